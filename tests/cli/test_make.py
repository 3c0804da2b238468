"""The newcomer's entry points outside Python: `make serve` picks up ./meshproxy.toml, the
copy the README tells them to make, and git ignores it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def serve_command(directory: Path) -> str:
    """The command `make serve` would run there (the virtualenv taken as built)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "serve"],
        cwd=directory, capture_output=True, text=True, timeout=30, check=True,
    )
    return result.stdout.strip().splitlines()[-1].strip()


def test_make_serve_uses_meshproxy_toml_when_there_is_one(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    assert serve_command(tmp_path) == ".venv/bin/meshproxy serve"
    shutil.copy(ROOT / "meshproxy.example.toml", tmp_path / "meshproxy.toml")
    assert serve_command(tmp_path) == ".venv/bin/meshproxy serve --config meshproxy.toml"


def test_the_readme_says_where_meshproxy_toml_comes_from() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"--config (\S+)", readme))
    assert named == {"meshproxy.toml"}, named
    assert "cp meshproxy.example.toml meshproxy.toml" in readme


def test_meshproxy_toml_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "meshproxy.toml"], cwd=ROOT, timeout=30
    )
    assert ignored.returncode == 0
