"""The dashboard's signing key: made once, shared by every process that starts with it."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from meshproxy.web.secret import SECRET_BYTES, SECRET_FILE, load_or_create_secret


def test_processes_starting_together_share_one_complete_key(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(load_or_create_secret, [tmp_path] * 32))
    assert len(set(keys)) == 1 and len(keys[0]) == SECRET_BYTES
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [SECRET_FILE]  # no temporaries
    assert load_or_create_secret(tmp_path) == keys[0]  # and it survives a restart
