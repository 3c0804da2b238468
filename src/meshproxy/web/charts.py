"""Usage charts drawn on the server as SVG: daily bars, stacked by series.

No JavaScript and no third-party code: the markup is built here, every label escaped. Each
bar carries a <title> (a native tooltip); pages add the same numbers as a table for
screen readers and for copying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

from meshproxy.web.units import human_bytes

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
OTHERS_COLOUR = "#8c8c8c"

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 10, 28


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int]  # bytes, one per day
    colour: str = PALETTE[0]


def _nice_step(maximum: int, ticks: int = 4) -> int:
    """A round axis step (1, 2 or 5 times a power of ten bytes) giving about `ticks` lines."""
    raw = max(1.0, maximum / ticks)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def _label_every(days: int) -> int:
    return 1 if days <= 10 else 7 if days <= 62 else 30


def daily_chart(
    chart_id: str,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    value_text: Callable[[int], str] = human_bytes,
    what: str = "Daily usage",
) -> Markup:
    """Bars per day; several series stack bottom-up in the given order. Values are bytes,
    or what `value_text` writes them as (counts: `str`)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    peak = max(totals, default=0)
    step = _nice_step(peak)
    top = max(step, math.ceil(peak / step) * step)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))
    bar_w = max(1.0, slot * 0.8)
    total_text = value_text(sum(totals))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(what)}, {len(days)} days, '
        f"{escape(total_text)} in all; peak day {escape(value_text(peak))}.</desc>",
    ]
    for value in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(value_text(value))}</text>"
        )
    every = _label_every(len(days))
    for index, day in enumerate(days):
        x = LEFT + slot * index + (slot - bar_w) / 2
        if index % every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{day:%b %d}</text>'
            )
        base = float(TOP + plot_h)
        for item in series:
            value = item.values[index]
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            label = f"{day.isoformat()} {item.label}: {value_text(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
                f'fill="{item.colour}"><title>{escape(label)}</title></rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
