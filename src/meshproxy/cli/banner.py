"""What a node prints once it listens: where everything is, and how to try it.

The first-run parent's credentials are written to `data_dir/first-run-credentials.txt`
(owner-only) the moment the account is created, before any listener is opened, and the
first-run block is printed at every start while that file exists and still holds the
account's password: a start that fails after creating the account (a busy port) loses
nothing, and the next start shows the credentials. Deleting the file ends it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from meshproxy import __version__
from meshproxy.api.docs import DOCS_PATH
from meshproxy.api.server import ApiPorts
from meshproxy.api.tls import ensure_certificate
from meshproxy.config import Settings
from meshproxy.domain.passwords import verify_password
from meshproxy.domain.proxies import proxy_address
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store

CREDENTIALS_FILE = "first-run-credentials.txt"


@dataclass(frozen=True)
class FirstRun:
    """The first-run parent's credentials, to print in the banner."""

    username: str
    password: str
    again: bool = False  # created on an earlier start; read back from the file


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / CREDENTIALS_FILE


def save_credentials(settings: Settings, first_run: FirstRun, try_lines: list[str]) -> Path:
    """Write (or rewrite, with the curl lines once the ports are known) the file, 0600."""
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"username: {first_run.username}\npassword: {first_run.password}\n"
    text += "".join(f"{line}\n" for line in try_lines)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    return path


def saved_credentials(settings: Settings, store: Store) -> FirstRun | None:
    """The credentials file of an earlier first run, if it still names a parent account
    with that password (a password changed since, or an account deleted, is not shown)."""
    try:
        text = credentials_path(settings).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    fields = dict(line.split(": ", 1) for line in text.splitlines()[:2] if ": " in line)
    username, password = fields.get("username"), fields.get("password")
    if not username or not password:
        return None
    account = store.accounts.get(username)
    if account is None or account.parent_id is not None or not account.password_hash:
        return None
    if not verify_password(account.password_hash, password):
        return None
    return FirstRun(username, password, again=True)


def _api_url(settings: Settings, ports: ApiPorts) -> str:
    if settings.api.public_url:
        return settings.api.public_url.rstrip("/")
    host = settings.api.listen if settings.api.listen not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.api.tls else "http"
    return f"{scheme}://{host}:{ports.https}"


def banner(
    settings: Settings,
    ports: ApiPorts | None,
    proxy_node: ProxyNode | None,
    first_run: FirstRun | None,
) -> str:
    """What `serve` prints once it listens: where everything is, and how to try it."""
    lines = [f"meshproxy {__version__} is running"]
    api_url = ""
    if ports is not None:
        api_url = _api_url(settings, ports)
        lines.append(f"  API:        {api_url}/api/   (interactive docs: {api_url}{DOCS_PATH})")
        lines.append(f"  Dashboard:  {api_url}/")
        if ports.http is not None:
            lines.append(f"  Plain HTTP: port {ports.http} (redirects to HTTPS)")
    if proxy_node is not None:
        for proxy, (host, port) in proxy_node.listening():
            lines.append(f"  Proxy:      {proxy_address(proxy)}  (listening on {host}:{port})")
            for kind, bound in (("SOCKS5", proxy_node.socks_addresses),
                                ("HTTPS proxy", proxy_node.tls_addresses)):  # fmt: skip
                if proxy.name in bound:
                    there, at = bound[proxy.name]
                    lines.append(f"              {kind} on {there}:{at}")
    if first_run is not None:
        credentials = f"{first_run.username}:{first_run.password}"
        try_lines = []
        if ports is not None:
            cacert = ""
            if settings.api.tls and settings.api.tls_cert is None:
                cacert = f"--cacert {shlex.quote(str(ensure_certificate(settings)[0]))} "
            try_lines.append(f"  curl {cacert}-u {shlex.quote(credentials)} {api_url}/api/proxies/")
        if proxy_node is not None and proxy_node.listening():
            _, (host, port) = proxy_node.listening()[0]
            proxy_url = f"http://{credentials}@{host}:{port}"
            try_lines.append(f"  curl -x {shlex.quote(proxy_url)} https://example.com/")
        saved = save_credentials(settings, first_run, try_lines)
        when = "on an earlier start" if first_run.again else "now"
        lines += [
            "",
            f"First run: a parent account was created {when}. Its credentials are saved,",
            f"  owner-only, in {saved}",
            "  and shown at every start until you delete that file:",
            f"  username: {first_run.username}",
            f"  password: {first_run.password}",
            "",
            "Try:",
            *try_lines,
        ]
    lines += ["", "Stop with Ctrl-C (or SIGTERM): connections drain and usage is flushed."]
    return "\n".join(lines)
