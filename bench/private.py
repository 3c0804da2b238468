"""Servers of a test's own, to kill and restart at will (never the shared local PostgreSQL
and Redis): a redis-server that keeps nothing on disk, and a PostgreSQL cluster in a
temporary directory. Each listens on a free loopback port, and `close()` removes it.

    redis_server = PrivateRedis(); redis_server.start(); redis_server.kill()
    postgres = PrivatePostgres(); postgres.start(); postgres.stop(); postgres.start()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from bench.local import free_port

POSTGRES_BIN = Path(os.environ.get("MESHPROXY_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


def _wait_for(what: str, answers: Callable[[], bool], alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15
    while not answers():
        if not alive():
            raise RuntimeError(f"{what} exited")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer in 15 s")
        time.sleep(0.05)


class PrivateRedis:
    """No snapshot, no append-only file: a restart after `kill` is empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = Path(tempfile.mkdtemp(prefix="meshproxy-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._process = process
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        try:
            _wait_for("redis-server", answers, lambda: process.poll() is None)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: Redis vanishes with everything it held."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._directory, ignore_errors=True)


class PrivatePostgres:
    """A cluster made by initdb (as the postgres user when run as root: PostgreSQL refuses
    root), trust authentication, fsync off (a crash test needs no durable disk)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._directory = Path(tempfile.mkdtemp(prefix="meshproxy-postgres-"))
        self._data = self._directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self._directory, "postgres")
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        command = [str(POSTGRES_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self._directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self._data), "-o", options,
                  "-l", str(self._directory / "log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every backend killed at once, no checkpoint (a crash, then
        recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self._data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self.stop("fast")
        shutil.rmtree(self._directory, ignore_errors=True)
