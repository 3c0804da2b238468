"""The open-file limit: every client connection, upstream connection and tunnel end is a
descriptor, and the usual soft limit (1024) caps a node at a few hundred tunnels. A node
raises its soft limit to the hard limit at start (the operator raises the hard limit:
systemd `LimitNOFILE=`, `ulimit -Hn`, or docker `--ulimit nofile=`)."""

from __future__ import annotations

import logging

log = logging.getLogger("meshproxy.proxy")

CEILING = 1 << 20  # no use asking for more descriptors than this


def raise_fd_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (capped at CEILING); the soft limit now."""
    try:
        import resource
    except ImportError:  # not on this platform (Windows): nothing to raise
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            log.warning("cannot raise the open-file limit from %d: %s", soft, error)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        log.warning("open-file limit is %d: a node holds about one tunnel per two descriptors;"
                    " raise the hard limit (ulimit -Hn, LimitNOFILE=)", soft)
    return int(soft)
