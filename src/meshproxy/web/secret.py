"""The dashboard's signing key: generated into the data directory on first start, kept
readable only by its owner, so sessions survive restarts and every worker shares it."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

SECRET_FILE = "dashboard-secret"
SECRET_BYTES = 32


def load_or_create_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(SECRET_BYTES)
    # Written whole to a private temporary file, then linked into place: the link either
    # creates the file complete or fails because another process won; then read its key.
    # (Never a half-written file, which an O_EXCL create-then-write could show a reader.)
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=f".{SECRET_FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret.hex() + "\n")
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return bytes.fromhex(path.read_text(encoding="ascii").strip())
    finally:
        os.unlink(temporary)
    return secret
