"""The threads that run the argon2 checks of credentials a node has not verified before.

Under a flood of new credentials up to `max_verifications_in_flight` checks are queued
or running, each using up to 4 argon2 lanes; on threads of normal priority they share
the CPU evenly with the event loop, which serves every client already verified. These
threads lower their own priority when they start (Linux schedules threads, not
processes, so `setpriority` on a thread id affects that thread only, and threads argon2
starts inherit it): the event loop wins a contended core, the checks use what is left.
DNS lookups stay on the loop's default executor.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final

NICENESS: Final = 10  # added to the thread's own; 19 is the lowest priority
THREAD_PREFIX: Final = "meshproxy-verify"


def _lower_priority() -> None:
    # Not everywhere: setpriority may be missing or refused; the checks then run as before.
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + NICENESS))


def _usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which container CPU sets
    narrow), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def verification_executor(cap: int) -> ThreadPoolExecutor:
    """At most one thread per core, and never more than `cap` (the checks allowed in
    flight): argon2 is CPU-bound, so more threads than cores would add memory (up to
    64 MiB per running check), not speed."""
    threads = max(1, min(cap, _usable_cores()))
    return ThreadPoolExecutor(
        threads, thread_name_prefix=THREAD_PREFIX, initializer=_lower_priority
    )
