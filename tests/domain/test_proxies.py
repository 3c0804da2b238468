from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshproxy.domain.proxies import proxy_address, resolve_proxy_name


@dataclass(frozen=True)
class Proxy:
    name: str
    domain: str
    port: int


PROXIES = [Proxy("us-ca", "us-ca.example.com", 31280), Proxy("open", "open.example.com", 31280)]


@pytest.mark.parametrize(
    "text", ["us-ca", "US-CA", "us-ca.example.com", "us-ca.example.com:31280", " us-ca "]
)
def test_every_form_names_the_proxy(text: str) -> None:
    assert resolve_proxy_name(text, PROXIES) == PROXIES[0]


@pytest.mark.parametrize("text", ["us", "us-ca.example.com:8080", "example.com", "us-ca:x"])
def test_unknown_names(text: str) -> None:
    assert resolve_proxy_name(text, PROXIES) is None


def test_address() -> None:
    assert proxy_address(PROXIES[1]) == "open.example.com:31280"
