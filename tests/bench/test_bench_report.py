"""The proxy benchmark's pure parts: reading wrk's output and rendering the tables."""

from __future__ import annotations

import math

import pytest
from bench.proxies.report import (
    Row,
    WrkOutputError,
    median,
    parse_wrk,
    render_cost_table,
    render_table,
)

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40001
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  412.11us  12.34ms   91.20%
    Req/Sec    33.10k     1.20k   35.00k    70.00%
  Latency Distribution
     50%  635.91us
     75%    1.40ms
     90%    1.90ms
     99%    2.10ms
  329412 requests in 10.00s, 374.53MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  32941.20
Transfer/sec:     37.45MB
"""


def test_parse_wrk_reads_rate_percentiles_and_failures() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 329412
    assert result.rate == pytest.approx(32941.2)
    assert result.p50_ms == pytest.approx(0.63591)
    assert result.p99_ms == pytest.approx(2.1)
    assert result.non_2xx == 7
    assert result.socket_errors == (0, 12, 0, 3)
    assert result.failed == 10  # read errors are a closing proxy, not a failure


def test_parse_wrk_seconds_and_clean_run() -> None:
    text = WRK_OUTPUT.replace("2.10ms", "1.25s").replace("  Socket errors: connect 0, read 12, "
                                                         "write 0, timeout 3\n", "")
    text = text.replace("  Non-2xx or 3xx responses: 7\n", "")
    result = parse_wrk(text)
    assert result.p99_ms == pytest.approx(1250.0)
    assert result.failed == 0


def test_parse_wrk_without_a_rate_is_an_error() -> None:
    with pytest.raises(WrkOutputError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_median_ignores_missing_measurements() -> None:
    assert median([3.0, math.nan, 1.0, 2.0]) == 2.0
    assert median([]) is None


def test_render_table_shows_medians_against_direct() -> None:
    direct = Row("direct", small_rate=[30000, 40000, 35000], small_p50=[1.0], small_p99=[2.0],
                 medium_rate=[20000], medium_p50=[1.5], medium_p99=[3.0],
                 connect_mbps=[2000], plain_mbps=[1800, 2200])
    squid = Row("squid", small_rate=[14000], small_p50=[3.5], small_p99=[6.25],
                medium_rate=[4000], medium_p50=[9.0, 8.0, 12.0], medium_p99=[13.0, 40.0, 14.0],
                connect_mbps=[1000, 1200, 1100], plain_mbps=[],
                tunnel_kib=[31.25], small_cpu_us=[80.0], connect_core_s_per_gb=[0.9])
    lines = render_table([direct, squid]).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:5] == [
        "proxy", "1 KiB req/s", "p50 / p99 1 KiB", "64 KiB req/s", "p50 / p99 64 KiB",
    ]
    assert lines[1].count("---") == len(header)
    assert len(lines) == 4
    assert lines[2].startswith(
        "| direct | 35,000 (1.00x) | 1.0 / 2.0 ms | 20,000 (1.00x) | 1.5 / 3.0 ms |"
    )
    squid_cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert squid_cells == [
        "squid", "14,000 (0.40x)", "3.5 / 6.2 ms", "4,000 (0.20x)", "9.0 / 14.0 ms",
        "1,100 (0.55x) [1,000-1,200]", "-", "31.2",
    ]
    costs = render_cost_table([direct, squid]).splitlines()
    assert len(costs) == 3  # no cost row for direct
    assert costs[2] == "| squid | 80.0 | - | 0.90 | - |"


def test_render_table_without_latencies_shows_a_dash() -> None:
    pproxy = Row("pproxy", small_rate=[26000], small_p50=[1.6], small_p99=[7.4])
    cells = [c.strip() for c in render_table([pproxy]).splitlines()[2].strip("|").split("|")]
    assert cells[:5] == ["pproxy", "26,000", "1.6 / 7.4 ms", "-", "-"]
