"""200 MB each way through the proxy, streamed: never held in memory."""

from __future__ import annotations

import json
from pathlib import Path

from .clients import curl
from .conftest import Env

SIZE = 200_000_000


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_large_download_and_upload_stream_through(env: Env, tmp_path: Path) -> None:
    before = rss_bytes()
    down = curl("-o", "/dev/null", "-w", "%{size_download}", "-x", env.proxy_url(),
                env.origins.url(f"/bytes/{SIZE}"), timeout=120)
    assert down.returncode == 0, down.stderr
    assert int(down.stdout) == SIZE
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        handle.truncate(SIZE)  # sparse: no 200 MB of test data on disk
    up = curl("-T", str(source), "-X", "POST", "-x", env.proxy_url(),
              env.origins.url("/upload"), timeout=120)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["received"] == SIZE
    # Proxy and origin live in this process: neither kept the bodies.
    assert rss_bytes() - before < 100_000_000
    env.flush()
    assert env.usage("alice")[1] > 2 * SIZE
