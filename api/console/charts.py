"""Server-drawn figures: a horizontal bar chart and a campaign's progress bar, as geometry the
templates write out as SVG (no script draws anything).

    chart = bar_chart([("answered", 12), ("no_answer", 3)])    # chart.rows[i].width, .y, …
    progress = campaign_progress({"completed": 3, "pending": 7, …}, total=10)

Every figure carries its numbers as text too: the bar's count beside it, the progress as
"3 of 10 ended" and a legend with each part's count, so nothing depends on telling colours apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ROW_HEIGHT = 24
BAR_HEIGHT = 16
LABEL_WIDTH = 130
BAR_WIDTH = 200
VALUE_WIDTH = 50


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: float


@dataclass(frozen=True)
class BarChart:
    rows: list[Bar]
    width: int
    height: int
    total: int
    label_width: int = LABEL_WIDTH
    bar_height: int = BAR_HEIGHT
    row_height: int = ROW_HEIGHT


def bar_chart(values: Sequence[tuple[str, int]]) -> BarChart:
    """One bar per `(label, count)`, scaled to the largest count."""
    largest = max((v for _, v in values), default=0)
    rows = [
        Bar(label, value, i * ROW_HEIGHT, (BAR_WIDTH * value / largest) if largest else 0)
        for i, (label, value) in enumerate(values)
    ]
    return BarChart(
        rows,
        LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH,
        max(len(rows), 1) * ROW_HEIGHT,
        sum(v for _, v in values),
    )


# A campaign's recipients in four parts, in the order the bar shows them.
PARTS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("done", "completed", frozenset({"completed"})),
    (
        "ended",
        "ended otherwise",
        frozenset({"exhausted", "failed", "cancelled", "expired", "suppressed"}),
    ),
    ("live", "on the line", frozenset({"dialing", "in_progress", "waiting_postcall", "analyzing"})),
    ("waiting", "waiting", frozenset({"pending", "scheduled", "queued"})),
)


@dataclass(frozen=True)
class Segment:
    key: str
    name: str
    count: int
    x: float  # 0..100
    width: float


@dataclass(frozen=True)
class Progress:
    segments: list[Segment]
    ended: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.ended / self.total) if self.total else 0


def campaign_progress(counts: Mapping[str, int], total: int) -> Progress:
    """The recipients by part (completed, ended otherwise, on the line, waiting) on a 0..100 bar."""
    segments = []
    x = 0.0
    for key, name, statuses in PARTS:
        count = sum(n for status, n in counts.items() if status in statuses)
        width = 100 * count / total if total else 0
        segments.append(Segment(key, name, count, x, width))
        x += width
    ended = segments[0].count + segments[1].count
    return Progress(segments, ended, total)
