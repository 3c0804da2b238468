"""JSON text as the API and the CLI write it: what json.dumps writes, floats in fixed
notation (domain.units.json_text)."""

from __future__ import annotations

import json

import pytest

from meshproxy.domain.units import json_text

SAMPLE = {
    "username": "pm_ünï \"q\"",
    "active": True,
    "monthly_bandwidth": 2.432e-06,
    "monthly_bandwidth_limit": 0,
    "nested": [None, False, 1, 1.1760233940000002, ("t",), {"k": 7.42e-07}],
}


def test_floats_are_fixed_and_the_rest_is_json() -> None:
    text = json_text(SAMPLE)
    assert '"monthly_bandwidth":0.000002432' in text
    assert "1.176023394," in text and '{"k":0.000000742}' in text and "e-" not in text
    assert json.loads(text) == json.loads(
        json.dumps(SAMPLE, ensure_ascii=False, separators=(",", ":"))
    ) | {"nested": [None, False, 1, 1.176023394, ["t"], {"k": 7.42e-07}]}
    assert '"pm_ünï \\"q\\""' in text  # UTF-8 kept, quotes escaped


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        json_text({"x": bad})


def test_indented_like_json_dumps() -> None:
    indented = json_text(SAMPLE, indent=2)
    expected = json.dumps(SAMPLE, ensure_ascii=False, indent=2)
    for exponent, fixed in (("2.432e-06", "0.000002432"), ("7.42e-07", "0.000000742"),
                            ("1.1760233940000002", "1.176023394")):
        expected = expected.replace(exponent, fixed)
    assert indented == expected
    assert json_text({"empty": {}, "none": []}, indent=2) == '{\n  "empty": {},\n  "none": []\n}'
