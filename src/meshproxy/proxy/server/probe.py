"""Active health checks of upstream egresses (core/health.py decides when, this probes).

A probe goes through the upstream like a request: a tunnel to `health_check_url`'s host
and a GET of it, good when any HTTP answer below 500 comes back. Without a URL it is
the connect (and TLS) to the upstream proxy alone. Each upstream is probed every
`health_check_interval`; one that is out of rotation comes back at its first good probe,
and its probes back off while they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from meshproxy.proxy.core.egress import Egress, EgressChoice
from meshproxy.proxy.server.dial import Dialer, UpstreamFailed, resolve_one

MAX_ANSWER = 16 * 1024


class Prober:
    def __init__(self, url: str, within: float) -> None:
        self.url = url
        self.within = within
        split = urlsplit(url) if url else None
        self._host = split.hostname if split else None
        self._port = (split.port or 80) if split else 80
        target = split.path or "/" if split else "/"
        if split and split.query:
            target += "?" + split.query
        self._request = (
            f"GET {target} HTTP/1.1\r\nHost: {split.netloc if split else ''}\r\n"
            "User-Agent: meshproxy-health-check\r\nConnection: close\r\n\r\n"
        ).encode()

    async def probe_due(self, dialers: list[Dialer]) -> None:
        """Probe, at once, every upstream whose probe is due."""
        work = []
        for dialer in dialers:
            pool = dialer.pool
            upstreams = [e for e in pool.members if e.upstream is not None]
            for egress in pool.health.due(upstreams, dialer.loop.time()):
                work.append(self._probe(dialer, egress))
        if work:
            await asyncio.gather(*work)

    async def _probe(self, dialer: Dialer, egress: Egress) -> None:
        loop, health = dialer.loop, dialer.pool.health
        started = loop.time()
        try:
            async with asyncio.timeout(self.within):
                if self._host is None:
                    await dialer.reach(egress)
                else:
                    await self._fetch(dialer, egress)
        except (OSError, ValueError) as error:  # TimeoutError and UpstreamFailed too
            health.failed(egress, str(error) or "timed out", loop.time(), probe=True)
            return
        now = loop.time()
        health.succeeded(egress, now - started, now, probe=True)

    async def _fetch(self, dialer: Dialer, egress: Egress) -> None:
        assert self._host is not None
        ip = await resolve_one(dialer.loop, self._host, self._port)
        sock = await dialer.attempt(EgressChoice(None, egress=egress), ip, self._port,
                                    self.within, record=False)
        with contextlib.closing(sock):
            loop = dialer.loop
            await loop.sock_sendall(sock, self._request)
            answer = b""
            while b"\r\n" not in answer and len(answer) < MAX_ANSWER:
                piece = await loop.sock_recv(sock, MAX_ANSWER)
                if not piece:
                    break
                answer += piece
        line = answer.split(b"\r\n", 1)[0].split(b" ")
        if len(line) < 2 or not line[0].startswith(b"HTTP/") or not line[1].isdigit():
            raise UpstreamFailed(f"upstream {egress.label}: no HTTP answer from the check URL")
        if int(line[1]) >= 500:
            raise UpstreamFailed(f"upstream {egress.label}: the check URL answered "
                                 f"{int(line[1])}")
