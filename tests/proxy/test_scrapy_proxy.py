"""Scrapy steering the proxy with username options in meta["proxy"] (its
HttpProxyMiddleware sends them as Proxy-Authorization), run as `scrapy runspider`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import Env, country_of

SPIDER = '''
import json

import scrapy


class Peers(scrapy.Spider):
    name = "peers"
    custom_settings = {
        "ROBOTSTXT_OBEY": False, "LOG_LEVEL": "ERROR", "RETRY_ENABLED": False,
        # No listener of its own: only loopback traffic to the proxy.
        "TELNETCONSOLE_ENABLED": False,
        "EXTENSIONS": {"scrapy.extensions.remote_control.RemoteControl": None},
    }

    async def start(self):
        for n in range(int(self.count)):
            yield scrapy.Request(f"{self.url}?n={n}", meta={"proxy": self.proxy},
                                 dont_filter=True)

    def parse(self, response):
        yield {"status": response.status, "peer": json.loads(response.text)["peer"],
               "egress": response.headers.get("X-ProxyMesh-IP", b"").decode()}
'''


def crawl(env: Env, tmp_path: Path, user: str, count: int) -> list[dict[str, object]]:
    spider, out = tmp_path / "spider.py", tmp_path / f"{user}.jsonl"
    spider.write_text(SPIDER)
    host, port = env.address()
    done = subprocess.run(
        [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", str(out),
         "-a", f"url={env.origins.url('/echo')}", "-a", f"proxy=http://{user}:pw@{host}:{port}",
         "-a", f"count={count}"],
        capture_output=True, timeout=60, check=False, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_scrapy_country_and_session_in_meta_proxy(env: Env, tmp_path: Path) -> None:
    german = crawl(env, tmp_path, "alice-country-de", 10)
    assert len(german) == 10
    assert {country_of(str(item["peer"])) for item in german} == {"DE"}
    assert all(item["peer"] == item["egress"] for item in german)
    session = crawl(env, tmp_path, "alice-session-scrapy1-sesstime-5", 10)
    assert len({item["peer"] for item in session}) == 1
