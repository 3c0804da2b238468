"""Numbers on the dashboard: rounded for people (three significant digits, never an
exponent), with the exact GB figure the API and the CSV write (domain.units.gb_text)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.units import gb_text
from meshproxy.store import Store
from meshproxy.web.units import exact_gb, human_bytes

from .helpers import PARENT_PASSWORD, Browser, make_sub

EXPONENT = re.compile(r"\d[eE][+-]?\d")
SHOWN = re.compile(r"-?\d+(\.\d+)? (B|kB|MB|GB|TB)")


def test_human_bytes_never_writes_an_exponent() -> None:
    sizes = [*range(0, 20_000, 7), *(k * 10**n for n in range(3, 16) for k in (999, 9995, 99_950))]
    for nbytes in [*sizes, 999_499, 999_500, 999_600, 999_999, 9_999_999_999]:
        text = human_bytes(nbytes)
        assert SHOWN.fullmatch(text), (nbytes, text)
        digits = text.split()[0].replace(".", "").lstrip("0")
        assert len(digits) <= 3 or text.endswith("TB") or text.endswith(" B"), (nbytes, text)
    assert human_bytes(999_600) == "1 MB"  # was "1e+03 kB"
    assert human_bytes(1_230) == "1.23 kB" and human_bytes(1_500_000_000) == "1.5 GB"
    assert human_bytes(999_499) == "999 kB"
    assert human_bytes(99_950_000) == "100 MB"


def test_exact_gb_is_the_api_figure() -> None:
    assert exact_gb(742) == "0.000000742 GB" == f"{gb_text(742 / 10**9)} GB"


def test_pages_show_the_exact_figure_behind_the_rounded_one(
    browser: Browser, store: Store, parent: AccountRecord
) -> None:
    sub = make_sub(store, parent, "pm_tiny")
    store.usage.record([UsageDelta(sub.id, parent.id, 742)], date(2026, 11, 12))
    browser.login("pm_parent", PARENT_PASSWORD)
    for path in ("/dashboard/sub-accounts/", "/dashboard/sub-accounts/pm_tiny/"):
        html = browser.get(path).text
        assert '<span class="usage-text" title="0.000000742 GB">742 B <span' in html
    export = browser.get("/dashboard/export/usage.csv?period=current").text
    assert not EXPONENT.search(export)
    assert list(csv.reader(io.StringIO(export)))[1] == [
        "pm_tiny", "2026-11-12", "742", "0.000000742"
    ]
