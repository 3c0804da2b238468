"""What a node prints once it listens: where everything is, and how to try it."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from meshproxy import __version__
from meshproxy.api.docs import DOCS_PATH
from meshproxy.api.server import ApiPorts
from meshproxy.api.tls import ensure_certificate
from meshproxy.config import Settings
from meshproxy.control import operator
from meshproxy.domain.proxies import proxy_address
from meshproxy.proxy.server.node import ProxyNode

CREDENTIALS_FILE = "first-run-credentials.txt"


def _api_url(settings: Settings, ports: ApiPorts) -> str:
    if settings.api.public_url:
        return settings.api.public_url.rstrip("/")
    host = settings.api.listen if settings.api.listen not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.api.tls else "http"
    return f"{scheme}://{host}:{ports.https}"


def _save_credentials(settings: Settings, text: str) -> Path:
    path = settings.data_dir / CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def banner(
    settings: Settings,
    ports: ApiPorts | None,
    proxy_node: ProxyNode | None,
    new_parent: operator.NewParent | None,
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
    if new_parent is not None:
        username = new_parent.account.username
        password = new_parent.password
        credentials = f"{username}:{password}"
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
        saved = _save_credentials(
            settings,
            f"username: {username}\npassword: {password}\n" + "\n".join(try_lines) + "\n",
        )
        lines += [
            "",
            "First run: created a parent account (shown only now; also saved, owner-only, in",
            f"  {saved})",
            f"  username: {username}",
            f"  password: {password}",
            "",
            "Try:",
            *try_lines,
        ]
    lines += ["", "Stop with Ctrl-C (or SIGTERM): connections drain and usage is flushed."]
    return "\n".join(lines)
