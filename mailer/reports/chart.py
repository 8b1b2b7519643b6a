"""The geometry of the successes-and-failures-per-day chart, drawn as SVG by a template.

Drawn on the server so the page needs no JavaScript library and nothing from a CDN.
"""

import math
from dataclasses import dataclass

from flask_babel import format_number, gettext, ngettext

from mailer.i18n import localtime
from mailer.services.reports import DayFigures

WIDTH, HEIGHT = 800, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 40
MAX_X_LABELS = 8


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # "success" or "failure"
    title: str


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class DailyChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    empty: bool
    description: str


def nice_step(largest: int, ticks: int = 4) -> int:
    """A round whole step (1, 2, 5, 10, 20, 50...) giving about `ticks` gridlines up to `largest`."""
    raw = max(largest / ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * magnitude:
            return int(multiple * magnitude)
    return int(10 * magnitude)


def daily_chart(days: list[DayFigures]) -> DailyChart:
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_height
    largest = max((max(day.successes, day.failures) for day in days), default=0)
    step = nice_step(largest)
    top_value = max(step * math.ceil(largest / step), step)

    def y_of(value: int) -> float:
        return bottom - plot_height * value / top_value

    slot = plot_width / max(len(days), 1)
    bar_width = max(slot * 0.4, 0.5)
    bars = []
    for index, day in enumerate(days):
        start = LEFT + index * slot + slot * 0.1
        # Written only for a day with a bar: a year has 366 days, most of them often empty.
        label = localtime(day.day, "day") if day.successes or day.failures else ""
        for offset, kind, value in ((0, "success", day.successes), (1, "failure", day.failures)):
            if value:
                y = y_of(value)
                if kind == "success":
                    title = ngettext(
                        "%(day)s: %(count)s succeeded",
                        "%(day)s: %(count)s succeeded",
                        value,
                        day=label,
                        count=format_number(value),
                    )
                else:
                    title = ngettext(
                        "%(day)s: %(count)s failed",
                        "%(day)s: %(count)s failed",
                        value,
                        day=label,
                        count=format_number(value),
                    )
                bars.append(
                    Bar(
                        x=round(start + offset * bar_width, 2),
                        y=round(y, 2),
                        width=round(bar_width, 2),
                        height=round(bottom - y, 2),
                        kind=kind,
                        title=title,
                    )
                )

    y_ticks = [Tick(round(y_of(value), 2), format_number(value)) for value in range(0, top_value + 1, step)]
    every = max(math.ceil(len(days) / MAX_X_LABELS), 1)
    x_ticks = [
        Tick(round(LEFT + index * slot + slot / 2, 2), localtime(day.day, "short day"))
        for index, day in enumerate(days)
        if index % every == 0
    ]
    total_successes = sum(day.successes for day in days)
    total_failures = sum(day.failures for day in days)
    if days:
        description = " ".join(
            [
                gettext(
                    "Successes and failures per day from %(first)s to %(last)s:",
                    first=localtime(days[0].day, "date"),
                    last=localtime(days[-1].day, "date"),
                ),
                ngettext(
                    "%(count)s success,", "%(count)s successes,", total_successes, count=format_number(total_successes)
                ),
                ngettext(
                    "%(count)s failure.", "%(count)s failures.", total_failures, count=format_number(total_failures)
                ),
            ]
        )
    else:
        description = gettext("No days to show.")
    return DailyChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=bottom,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        empty=largest == 0,
        description=description,
    )
