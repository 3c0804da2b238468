"""docs/client.md's Python flow, run as written against the running API (only the address,
credentials and file paths swapped for the test server's)."""

from __future__ import annotations

import re
from pathlib import Path

from meshproxy.client import SubAccount

from .conftest import PASSWORD, LiveApi

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def test_the_documented_python_flow_runs(live_api: LiveApi, parent: str, tmp_path: Path) -> None:
    flow = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    for documented, real in [
        ('"https://127.0.0.1:8443"', repr(live_api.url)),
        ('"pm_reseller"', repr(parent)),
        ('"the parent password"', repr(PASSWORD)),
        ('"data/tls/api-cert.pem"', repr(str(live_api.cert))),
        ('"usage-2025-10.csv"', repr(str(tmp_path / "usage.csv"))),
    ]:
        assert documented in flow
        flow = flow.replace(documented, real)
    namespace: dict[str, object] = {}
    exec(compile(flow, str(DOC), "exec"), namespace)
    alice = live_api.store.get_account("pm_alice")
    assert alice is not None and alice.limits.monthly_gb == 20 and alice.email is None
    assert isinstance(namespace["alice"], SubAccount)
    assert (tmp_path / "usage.csv").read_text().startswith("username,active,")
