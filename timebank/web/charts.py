"""Horizontal bar charts drawn on the server as inline SVG (no script, no style attribute).

``bar_chart`` lays out the bars; ``templates/reports/_charts.html`` draws them. Each bar
has its name on a line of its own above it and its value in words after it, so a chart
fits a 360 px phone whatever the names; the table beside the chart carries every number
too, so nothing is told by the chart (or a colour) alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH = 300  # viewBox units; the SVG scales to its box (a unit is 1.1 px on a 360 px phone)
LARGE_WIDTH = 236  # in large-text mode: the same box, so text about 1.4 px a unit
FONT = 15
ROW = 48  # a name line and a bar
BAR = 18
VALUE_ROOM = 112  # room kept right of the longest bar for its value


@dataclass(frozen=True)
class Bar:
    label: str  # the name (shortened to fit; the table has it whole)
    text: str  # the value in words: "2.5 小时", "30 积分"
    label_y: float
    bar_y: float
    length: float
    text_x: float
    negative: bool


@dataclass
class BarChart:
    title: str  # the summary a screen reader says (the SVG's <title>)
    width: int = WIDTH
    height: int = 0
    bar_height: int = BAR
    font: int = FONT
    bars: list[Bar] = field(default_factory=list)


def _text_width(text: str) -> float:
    """About how wide a text is at FONT: a Chinese character is a square, Latin about half."""
    return sum(FONT if ord(ch) > 0x2E7F else FONT * 0.56 for ch in text)


def shorten(text: str, room: float) -> str:
    if _text_width(text) <= room:
        return text
    out = ""
    for ch in text:
        if _text_width(out + ch + "…") > room:
            break
        out += ch
    return out + "…"


def bar_chart(title: str, items: list[tuple[str, int | float, str]], large: bool = False) -> BarChart:
    """A chart of ``(label, value, value in words)``: bar lengths proportional to the
    values' sizes (a negative value's bar is drawn grey, and its words say "-").
    ``large``: for large-text mode (fewer units across the same box: bigger text)."""
    width = LARGE_WIDTH if large else WIDTH
    chart = BarChart(title, width=width)
    high = max((abs(v) for _, v, _ in items), default=0) or 1
    room = width - VALUE_ROOM
    for i, (label, value, text) in enumerate(items):
        top = i * ROW
        length = round(abs(value) / high * room, 2)
        if value and length < 2:
            length = 2.0  # a small non-zero value still shows
        chart.bars.append(
            Bar(
                label=shorten(label, width - 4),
                text=text,
                label_y=top + FONT + 2,
                bar_y=top + FONT + 8,
                length=length,
                text_x=round(length + 6, 2),
                negative=value < 0,
            )
        )
    chart.height = max(len(items) * ROW + 4, ROW)
    return chart
