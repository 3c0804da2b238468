"""Argon2 checks of new credentials run on the node's own threads, niced below the event
loop's, so a flood of them leaves the CPU to the clients already verified."""

from __future__ import annotations

import os
import threading

import pytest

from meshproxy.proxy.server.verifying import THREAD_PREFIX

from .clients import curl
from .conftest import Env


def test_credentials_are_checked_on_threads_of_lower_priority_than_the_loop(env: Env) -> None:
    for password, status in (("wrong", b"407"), ("pw", b"200")):  # both run argon2
        result = curl(
            "-o", "/dev/null", "-w", "%{http_code}", "-x", env.proxy_url(password=password),
            env.origins.url("/echo"),
        )
        assert result.stdout == status, result.stderr
    checkers = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
    assert checkers
    loop_thread = env.thread.thread.native_id
    assert loop_thread is not None
    loop_niceness = os.getpriority(os.PRIO_PROCESS, loop_thread)
    if loop_niceness >= 19:
        pytest.skip("the tests already run at the lowest priority: none lower to take")
    for thread in checkers:
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) > loop_niceness
