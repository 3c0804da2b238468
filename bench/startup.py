"""Start-up cost: a proxy-only node's readiness and idle memory, and the CLI's own start.

    .venv/bin/python -m bench.startup [--runs 7] [--python .venv/bin/python] [--src DIR]

node: starts `meshproxy proxy --config FILE` RUNS times (SQLite, already migrated, one
proxy on 127.0.0.1, the admin listener on); "ready" is the time from spawn to its
"listening" line (wall, and the CPU seconds the node had used by then, which a busy
machine inflates less), RSS its VmRSS 2 s later, idle. cli: the wall time of `meshproxy api sub
--help`, of an API client call (`api sub list` to a closed loopback port), and of
`meshproxy admin list` and `admin plans` on the same database (wall and CPU). Medians. `--src` runs
another checkout's source (PYTHONPATH), to compare before/after on one machine in one run.
meshproxy's bytecode is compiled first (into the scratch directory), as an install has it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.local import free_port

_BYTECODE: dict[str, str] = {}  # PYTHONPYCACHEPREFIX: main's scratch directory


def _env(src: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **_BYTECODE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src:
        env["PYTHONPATH"] = src
    return env


def compile_bytecode(python: str, src: str | None) -> None:
    """Compile meshproxy's modules once, as `pip install` does: a checkout run with
    PYTHONDONTWRITEBYTECODE (some shells set it) would compile them at every start,
    about 0.06 s of each figure that no installed node pays."""
    subprocess.run(
        [python, "-c", "import compileall, meshproxy, os; "
         "compileall.compile_dir(os.path.dirname(meshproxy.__file__), quiet=2)"],
        check=True, env=_env(src), timeout=300,
    )  # fmt: skip


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


def _cpu_seconds(pid: int) -> float:
    """User + system time of a running process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_config(directory: Path) -> Path:
    config = directory / "node.toml"
    config.write_text(
        f'database_url = "sqlite:///{directory / "store.sqlite3"}"\n'
        f'data_dir = "{directory / "data"}"\n'
        'plans = [{ name = "default", default_proxies = ["edge"] }]\n'
        '[admin]\nenabled = true\nlisten = "127.0.0.1"\nport = 0\n'
        f'[[proxies]]\nname = "edge"\nlisten = "127.0.0.1"\nport = {free_port()}\n'
    )
    return config


def node(python: str, src: str | None, config: Path, runs: int) -> tuple[float, float, float]:
    """Median (seconds to ready, CPU seconds to ready, idle MiB) of `runs` starts."""
    ready, cpu, rss = [], [], []
    for _ in range(runs):
        started = time.monotonic()
        process = subprocess.Popen(
            [python, "-m", "meshproxy", "proxy", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_env(src),
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        ready.append(time.monotonic() - started)
        cpu.append(_cpu_seconds(process.pid))
        try:
            if "listening" not in line:
                raise SystemExit(f"the node did not start: {line!r}")
            time.sleep(2.0)
            rss.append(_rss_mib(process.pid))
        finally:
            process.terminate()
            process.wait(30)
    return statistics.median(ready), statistics.median(cpu), statistics.median(rss)


def command(python: str, src: str | None, args: list[str], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `meshproxy ARGS` (its exit code is not judged)."""
    times, cpu = [], []
    for _ in range(runs):
        started = time.monotonic()
        process = subprocess.Popen(
            [python, "-m", "meshproxy", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(src),
        )
        _, _, usage = os.wait4(process.pid, 0)
        process.returncode = 0  # reaped here
        times.append(time.monotonic() - started)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--src", default=None, help="PYTHONPATH: another checkout's src/")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        _BYTECODE["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "bytecode")
        compile_bytecode(options.python, options.src)
        config = write_config(Path(scratch))
        command(options.python, options.src, ["db", "upgrade", "--config", str(config)], 1)
        ready, cpu, rss = node(options.python, options.src, config, options.runs)
        print(f"proxy node: ready {ready:.2f} s ({cpu:.2f} s CPU), idle RSS {rss:.1f} MiB")
        client = ["api", "--api-url", f"http://127.0.0.1:{free_port()}", "--api-user", "u",
                  "--api-password", "p", "--retries", "0", "sub", "list"]
        for label, args in [
            ("api sub --help", ["api", "sub", "--help"]),
            ("api sub list (closed port)", client),
            ("admin list", ["admin", "list", "--config", str(config)]),
            ("admin plans", ["admin", "plans", "--config", str(config)]),
        ]:
            wall, cpu = command(options.python, options.src, args, options.runs)
            print(f"meshproxy {label}: {wall:.2f} s ({cpu:.2f} s CPU)")


if __name__ == "__main__":
    main()
