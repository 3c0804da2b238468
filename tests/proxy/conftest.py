"""The data-plane tests' fixtures and helpers, which live in tests/support/proxy_env.py
(so that other folders' tests take them from there, not from this conftest)."""

from __future__ import annotations

from support.proxy_env import (
    EGRESS,
    Env,
    LoopThread,
    Origins,
    RawOrigin,
    _self_signed,
    country_of,
    echo_json,
    env,
    origin_thread,
    origins,
    proxy_settings,
    proxy_thread,
    start_env,
)

__all__ = [
    "EGRESS",
    "Env",
    "LoopThread",
    "Origins",
    "RawOrigin",
    "_self_signed",
    "country_of",
    "echo_json",
    "env",
    "origin_thread",
    "origins",
    "proxy_settings",
    "proxy_thread",
    "start_env",
]
