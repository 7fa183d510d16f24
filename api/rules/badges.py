"""Pure rendering of embeddable SVG: shields-style flat badges and a year's activity heatmap.

Nothing here reads a clock, a database or a request: :mod:`api.routes.badges` passes in the
numbers and gets back SVG text.

The SVG is built as an element tree (:mod:`xml.etree.ElementTree`) and serialized, never pasted
together from strings: every label, value and title goes through the serializer, which escapes
``&``, ``<``, ``>`` and quotes, so a language called ``<script>`` is drawn as those characters.
Characters XML 1.0 cannot carry at all (most control characters) are dropped first, and long
texts are cut, so any input gives a document an XML parser accepts. A template engine would add
a dependency to do the same escaping; the tree also keeps the output deterministic (the
"profile private" badge is one constant string).
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

SVG_NS = "http://www.w3.org/2000/svg"

# label shown on each metric's badge (GET /badge/{username}/{metric})
METRICS: dict[str, str] = {
    "coding-time": "code time",
    "today": "today",
    "streak": "streak",
    "top-language": "language",
    "all-time": "all time",
}

# Shields' palette, from no activity (0) to a lot (4).
LEVEL_COLOURS = ("#9f9f9f", "#dfb317", "#a4a61d", "#97ca00", "#4c1")
GREY = LEVEL_COLOURS[0]
LABEL_COLOUR = "#555"

# Where each metric moves up a level: (1 -> 2, 2 -> 3, 3 -> 4); anything above zero is level 1.
_HOUR = 3600.0
TODAY_STEPS = (1 * _HOUR, 2 * _HOUR, 4 * _HOUR)
WEEK_STEPS = (5 * _HOUR, 10 * _HOUR, 20 * _HOUR)  # coding-time, top-language, a language
ALL_TIME_STEPS = (10 * _HOUR, 100 * _HOUR, 1000 * _HOUR)
STREAK_STEPS = (3.0, 7.0, 30.0)  # days

MAX_TEXT = 40  # characters; longer texts end in an ellipsis
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FONT = "Verdana,Geneva,DejaVu Sans,sans-serif"


# ---- text ---------------------------------------------------------------------------------------


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without characters XML cannot hold, cut to ``limit`` characters."""
    text = _NOT_XML.sub("", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Approximate advance widths of Verdana at 11 px (what shields measures with), by character class.
_NARROW = set("ijlI|!.,:;'` ")
_SEMI = set('frt()[]{}/\\-"*')
_WIDE = set("mwMW@%")


def text_width(text: str) -> float:
    """An estimate of ``text``'s width in pixels at 11 px Verdana (no font metrics at hand)."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.6
        elif char in _SEMI:
            width += 4.8
        elif char in _WIDE:
            width += 10.0
        elif char.isdigit():
            width += 7.0
        elif char.isupper():
            width += 7.6
        elif char.isascii():
            width += 6.6
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            width += 12.0  # CJK and emoji
        elif unicodedata.combining(char):
            continue
        else:
            width += 7.0
    return width


def short_time(seconds: float) -> str:
    """``"14h 32m"``, ``"45m"``, ``"0m"`` (whole minutes, rounded down)."""
    minutes = max(0, int(seconds)) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def hours_text(seconds: float) -> str:
    """``"1,234h"`` (whole hours); under an hour, :func:`short_time`."""
    hours = max(0, int(seconds)) // 3600
    return f"{hours:,}h" if hours else short_time(seconds)


def days_text(days: int) -> str:
    return f"{days} day 🔥" if days == 1 else (f"{days} days 🔥" if days else "0 days")


# ---- levels -------------------------------------------------------------------------------------


def level_of(value: float, steps: tuple[float, float, float]) -> int:
    """0 for nothing, then 1 to 4 as ``value`` passes each of ``steps``."""
    if value <= 0:
        return 0
    return 1 + sum(1 for step in steps if value >= step)


def colour_of(value: float, steps: tuple[float, float, float]) -> str:
    return LEVEL_COLOURS[level_of(value, steps)]


# ---- flat badge ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Badge:
    label: str
    message: str
    colour: str


def _num(value: float) -> str:
    return f"{round(value, 1):g}"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    # Attribute names use `_` where SVG uses `-` (Python keywords cannot hold a dash).
    child = ET.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrs.items()})
    if text is not None:
        child.text = text
    return child


def _svg(width: float, height: float, label: str) -> ET.Element:
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": _num(width),
            "height": _num(height),
            "viewBox": f"0 0 {_num(width)} {_num(height)}",
            "role": "img",
            "aria-label": label,
        },
    )
    _el(root, "title", label)
    return root


def _serialize(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def render_badge(badge: Badge) -> str:
    """A shields.io "flat" badge: the label on a dark pill, the message on a coloured one."""
    label, message = clean(badge.label), clean(badge.message)
    left = round(text_width(label) + 10, 1)
    right = round(text_width(message) + 10, 1)
    total = left + right
    root = _svg(total, 20, f"{label}: {message}")
    gradient = _el(root, "linearGradient", id="s", x2="0", y2="100%")
    _el(gradient, "stop", offset="0", stop_color="#bbb", stop_opacity=".1")
    _el(gradient, "stop", offset="1", stop_opacity=".1")
    clip = _el(root, "clipPath", id="r")
    _el(clip, "rect", width=_num(total), height="20", rx="3", fill="#fff")
    pills = _el(root, "g", clip_path="url(#r)")
    _el(pills, "rect", width=_num(left), height="20", fill=LABEL_COLOUR)
    _el(pills, "rect", x=_num(left), width=_num(right), height="20", fill=badge.colour)
    _el(pills, "rect", width=_num(total), height="20", fill="url(#s)")
    texts = _el(root, "g", fill="#fff", text_anchor="middle", font_family=_FONT, font_size="11")
    for centre, text in ((left / 2, label), (left + right / 2, message)):
        # a faint copy one pixel lower is the shadow shields draws under each text
        _el(
            texts,
            "text",
            text,
            x=_num(centre),
            y="15",
            fill="#010101",
            fill_opacity=".3",
            aria_hidden="true",
        )
        _el(texts, "text", text, x=_num(centre), y="14")
    return _serialize(root)


# One badge for private and unknown users alike, whatever the metric, so that neither the
# bytes nor the length tell them apart.
PRIVATE_BADGE = render_badge(Badge("codetrackr", "profile private", GREY))


def hidden_badge(label: str) -> str:
    """A public user's badge for a metric their profile does not show."""
    return render_badge(Badge(label, "hidden", GREY))


def metric_badge(metric: str, value: float, *, language: str | None = None) -> Badge:
    """The badge of one of :data:`METRICS`. ``value`` is seconds (days for ``streak``; for
    ``top-language`` the seconds of ``language``, the most used one, or None)."""
    label = METRICS[metric]
    if metric == "today":
        return Badge(label, short_time(value), colour_of(value, TODAY_STEPS))
    if metric == "coding-time":
        return Badge(label, short_time(value), colour_of(value, WEEK_STEPS))
    if metric == "all-time":
        return Badge(label, hours_text(value), colour_of(value, ALL_TIME_STEPS))
    if metric == "streak":
        return Badge(label, days_text(int(value)), colour_of(value, STREAK_STEPS))
    if metric == "top-language":
        if language is None:
            return Badge(label, "none", GREY)
        return Badge(label, language, colour_of(value, WEEK_STEPS))
    raise KeyError(metric)


def language_badge(language: str, seconds: float) -> Badge:
    """Time in one language over the last 7 days, labelled with the language."""
    return Badge(language, short_time(seconds), colour_of(seconds, WEEK_STEPS))


# ---- heatmap ------------------------------------------------------------------------------------

HEAT_COLOURS = ("#ebedf0", "#9be9a8", "#40c463", "#30a14e", "#216e39")
_CELL, _GAP = 10, 2
_STEP = _CELL + _GAP
_LEFT, _TOP, _BOTTOM, _RIGHT = 30, 20, 24, 6
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = {0: "Mon", 2: "Wed", 4: "Fri"}  # rows are ISO weekdays, Monday on top


def heat_levels(seconds: Sequence[float]) -> list[int]:
    """A level per day: 0 without coding time, else ``ceil(4 * F(s))`` where ``F(s)`` is the
    share of active days with at most ``s`` seconds. Each quarter of a user's active days gets a
    shade (equal days the same one) and their busiest day the darkest, whatever their hours."""
    active = sorted(s for s in seconds if s > 0)
    n = len(active)
    return [0 if s <= 0 else -(-4 * bisect_right(active, s) // n) for s in seconds]


def _month_labels(first_column: date, days: Sequence[date]) -> list[tuple[int, str]]:
    """(column, month) where each month starts; the first, partial month only if it has room."""
    starts = [
        ((day - first_column).days // 7, _MONTHS[day.month - 1])
        for i, day in enumerate(days)
        if day.day == 1 or i == 0
    ]
    if len(starts) > 1 and starts[1][0] - starts[0][0] < 3:
        starts = starts[1:]
    return starts


def render_heatmap(days: Sequence[tuple[date, float]], *, title: str) -> str:
    """A calendar of coding time: one square per day, weeks as columns (Monday on top), months
    along the top, a legend and the period's total below. ``days`` are consecutive."""
    if not days:
        raise ValueError("a heatmap needs at least one day")
    title = clean(title, 120)
    first = days[0][0]
    first_column = first - timedelta(days=first.weekday())
    columns = (days[-1][0] - first_column).days // 7 + 1
    width = _LEFT + columns * _STEP + _RIGHT
    height = _TOP + 7 * _STEP + _BOTTOM
    root = _svg(width, height, title)
    _el(root, "rect", width=_num(width), height=_num(height), fill="#fff")
    text_style = {"font_family": _FONT, "font_size": "9", "fill": "#57606a"}
    labels = _el(root, "g", **text_style)
    for column, month in _month_labels(first_column, [day for day, _ in days]):
        _el(labels, "text", month, x=_num(_LEFT + column * _STEP), y=_num(_TOP - 6))
    for row, weekday in _WEEKDAYS.items():
        _el(labels, "text", weekday, x="2", y=_num(_TOP + row * _STEP + _CELL - 1))

    grid = _el(root, "g")
    levels = heat_levels([seconds for _, seconds in days])
    for (day, seconds), level in zip(days, levels, strict=True):
        offset = (day - first_column).days
        cell = _el(
            grid,
            "rect",
            x=_num(_LEFT + offset // 7 * _STEP),
            y=_num(_TOP + offset % 7 * _STEP),
            width=str(_CELL),
            height=str(_CELL),
            rx="2",
            fill=HEAT_COLOURS[level],
            data_date=day.isoformat(),
            data_level=str(level),
        )
        spent = short_time(seconds) if seconds > 0 else "no coding"
        _el(cell, "title", f"{day.isoformat()}: {spent}")

    footer_y = _TOP + 7 * _STEP + 14
    footer = _el(root, "g", **text_style)
    total = sum(seconds for _, seconds in days)
    _el(footer, "text", f"{short_time(total)} in {len(days)} days", x=str(_LEFT), y=_num(footer_y))
    legend_x = width - _RIGHT - len(HEAT_COLOURS) * _STEP - 30
    _el(footer, "text", "Less", x=_num(legend_x - 24), y=_num(footer_y))
    for i, colour in enumerate(HEAT_COLOURS):
        _el(
            root,
            "rect",
            x=_num(legend_x + i * _STEP),
            y=_num(footer_y - _CELL + 1),
            width=str(_CELL),
            height=str(_CELL),
            rx="2",
            fill=colour,
        )
    _el(footer, "text", "More", x=_num(legend_x + len(HEAT_COLOURS) * _STEP + 2), y=_num(footer_y))
    return _serialize(root)
