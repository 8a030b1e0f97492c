"""The patient timeline as inline SVG, rendered on the server (no chart library, no script).

Panels share one time axis (ward time zone, day boundaries marked, day 0 drawn):

===============  ===========================================================================
panel            content
===============  ===========================================================================
treatments       tocilizumab (T), corticosteroids (S), antipyretics (A) as markers with dose
temperature      readings; the ASTCT fever threshold (``crs.fever_min_c``) as a line
blood pressure   systolic (solid) and diastolic (dashed); the hypotension threshold of the
                 CRS rule table (``crs.sbp_below_mmhg``); vasopressor infusions as bars
SpO2             readings; oxygen support (device, flow) as bars
grades           CRS and ICANS grades over time (steps) with their episodes shaded
===============  ===========================================================================

Thresholds are drawn from the typed rule tables (:mod:`immunotox.scales.astct2019_spec`), never typed here.
Every mark has a ``<title>`` (read by screen readers and shown on hover) and the page pairs the
chart with the same data as a table. Colours are paired with line styles and letters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from ..scales import astct2019_spec
from .i18n import fmt_datetime, fmt_number, fmt_short_date, fmt_time, gettext, local

WIDTH = 960
LEFT = 70
RIGHT = 16
PLOT_W = WIDTH - LEFT - RIGHT
STRIP_H = 15


@dataclass(frozen=True)
class Point:
    t: dt.datetime
    v: float


@dataclass(frozen=True)
class Span:
    """An interval: a device or an infusion running from ``start`` to ``end`` (None: still running)."""

    label: str
    start: dt.datetime
    end: dt.datetime | None
    detail: str = ""


@dataclass(frozen=True)
class Marker:
    kind: str  # tocilizumab | corticosteroid | antipyretic
    t: dt.datetime
    text: str


@dataclass(frozen=True)
class GradeStep:
    scale: str
    t: dt.datetime
    grade: int | None
    hi: int
    complete: bool


@dataclass(frozen=True)
class EpisodeSpan:
    scale: str
    start: dt.datetime
    end: dt.datetime | None
    peak: int


@dataclass
class ChartData:
    t0: dt.datetime
    t1: dt.datetime
    infusion_at: dt.datetime | None = None
    temperature: list[Point] = field(default_factory=list)
    sbp: list[Point] = field(default_factory=list)
    dbp: list[Point] = field(default_factory=list)
    spo2: list[Point] = field(default_factory=list)
    oxygen: list[Span] = field(default_factory=list)
    vasopressors: list[Span] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    grades: list[GradeStep] = field(default_factory=list)
    episodes: list[EpisodeSpan] = field(default_factory=list)
    scale_names: dict[str, str] = field(default_factory=dict)


def table_rows(data: ChartData) -> list[tuple[dt.datetime, list[float | None]]]:
    """The readings as rows (time; temperature, systolic, diastolic, SpO2), for the data table."""
    rows: dict[dt.datetime, list[float | None]] = {}
    for col, series in enumerate((data.temperature, data.sbp, data.dbp, data.spo2)):
        for p in series:
            rows.setdefault(p.t, [None, None, None, None])[col] = p.v
    return sorted(rows.items())


def thresholds() -> tuple[float, float]:
    """(fever °C, hypotension SBP mmHg) from the ASTCT 2019 rule table."""
    crs = astct2019_spec.table().crs
    return crs.fever_min_c, crs.sbp_below_mmhg


def _f(x: float) -> str:
    return f"{x:.1f}"


class _Svg:
    def __init__(self, data: ChartData) -> None:
        self.d = data
        self.parts: list[str] = []
        self.span_s = max((data.t1 - data.t0).total_seconds(), 60.0)

    def x(self, t: dt.datetime) -> float:
        frac = (t - self.d.t0).total_seconds() / self.span_s
        return LEFT + min(max(frac, 0.0), 1.0) * PLOT_W

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def text(self, x: float, y: float, s: str, cls: str = "c-label", anchor: str = "start") -> None:
        self.add(f'<text x="{_f(x)}" y="{_f(y)}" class="{cls}" text-anchor="{anchor}">{escape(s)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str) -> None:
        self.add(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" class="{cls}"/>')


def _yscale(lo: float, hi: float, top: float, h: float) -> Callable[[float], float]:
    def y(v: float) -> float:
        return top + h - (min(max(v, lo), hi) - lo) / (hi - lo) * h

    return y


def _range(points: Sequence[Point], lo: float, hi: float, pad: float) -> tuple[float, float]:
    if points:
        lo = min(lo, min(p.v for p in points) - pad)
        hi = max(hi, max(p.v for p in points) + pad)
    return lo, hi


def _series(
    svg: _Svg, points: Sequence[Point], y: Callable[[float], float], cls: str, unit: str, name: str
) -> None:
    pts = sorted(points, key=lambda p: p.t)
    if len(pts) > 1:
        coords = " ".join(f"{_f(svg.x(p.t))},{_f(y(p.v))}" for p in pts)
        svg.add(f'<polyline points="{coords}" class="{cls} c-line"/>')
    for p in pts:
        tip = f"{name} {fmt_number(p.v)} {unit} — {fmt_datetime(p.t)}"
        svg.add(
            f'<circle cx="{_f(svg.x(p.t))}" cy="{_f(y(p.v))}" r="2.6" class="{cls} c-dot">'
            f"<title>{escape(tip)}</title></circle>"
        )


TITLE_H = 16.0


def _panel(
    svg: _Svg, top: float, h: float, title: str, ticks: Sequence[float], y: Callable[[float], float]
) -> None:
    """A framed panel at ``top`` with its title above it and its horizontal grid."""
    svg.text(LEFT, top - 4, title, "c-title")
    svg.add(f'<rect x="{LEFT}" y="{_f(top)}" width="{PLOT_W}" height="{_f(h)}" class="c-panel"/>')
    for v in ticks:
        svg.line(LEFT, y(v), LEFT + PLOT_W, y(v), "c-grid")
        svg.text(LEFT - 6, y(v) + 4, fmt_number(v, 0), "c-tick", "end")


def _spans(svg: _Svg, spans: Sequence[Span], top: float, cls: str, empty: str) -> float:
    """Bars, one row per label; returns the height used."""
    rows: dict[str, list[Span]] = {}
    for s in spans:
        rows.setdefault(s.label, []).append(s)
    if not rows:
        svg.text(LEFT + 4, top + 11, empty, "c-note")
        return STRIP_H
    for i, (lab, items) in enumerate(sorted(rows.items())):
        y = top + i * STRIP_H
        for s in items:
            x1 = svg.x(s.start)
            x2 = svg.x(s.end or svg.d.t1)
            end = fmt_datetime(s.end) if s.end else gettext("running")
            tip = f"{lab} {s.detail} — {fmt_datetime(s.start)} → {end}".replace("  ", " ")
            svg.add(
                f'<rect x="{_f(x1)}" y="{_f(y + 2)}" width="{_f(max(x2 - x1, 2.0))}" height="{STRIP_H - 4}" '
                f'class="{cls}"><title>{escape(tip)}</title></rect>'
            )
        svg.text(LEFT - 6, y + 11, lab[:14], "c-tick", "end")
    return STRIP_H * len(rows)


def _time_axis(svg: _Svg, top: float, bottom: float) -> None:
    d = svg.d
    hours = svg.span_s / 3600
    step = 3 if hours <= 30 else 6 if hours <= 80 else 12 if hours <= 8 * 24 else 24
    start = local(d.t0).replace(minute=0, second=0, microsecond=0)
    start += dt.timedelta(hours=(step - start.hour % step) % step)
    t = start
    while t <= local(d.t1):
        x = svg.x(t.astimezone(dt.UTC))
        midnight = t.hour == 0
        svg.line(x, top, x, bottom, "c-vgrid-day" if midnight else "c-vgrid")
        label = fmt_short_date(t) if midnight else fmt_time(t)
        svg.text(x, bottom + 14, label, "c-axis-day" if midnight else "c-axis", "middle")
        t = t + dt.timedelta(hours=step)  # wall-clock steps: ticks stay on the hour across DST
    if d.infusion_at is not None and d.t0 <= d.infusion_at <= d.t1:
        x = svg.x(d.infusion_at)
        svg.line(x, top, x, bottom, "c-day0")
        svg.text(x + 3, top + 10, gettext("D0"), "c-day0-label")


def render(data: ChartData, *, title_id: str = "chart-title", desc_id: str = "chart-desc") -> Markup:
    """The SVG markup of ``data`` (safe to insert in a page)."""
    fever_c, sbp_low = thresholds()
    svg = _Svg(data)
    top = 8.0 + TITLE_H
    axis_top = top
    # treatments strip
    svg.text(LEFT, top - 4, gettext("Treatments (T tocilizumab, S corticosteroid, A antipyretic)"), "c-title")
    svg.add(f'<rect x="{LEFT}" y="{_f(top)}" width="{PLOT_W}" height="18" class="c-panel"/>')
    letters = {"tocilizumab": "T", "corticosteroid": "S", "antipyretic": "A"}
    for m in sorted(data.markers, key=lambda m: m.t):
        x = svg.x(m.t)
        letter = letters.get(m.kind, "•")
        svg.add(
            f'<g class="c-marker c-{m.kind}"><title>{escape(m.text)}</title>'
            f'<rect x="{_f(x - 7)}" y="{_f(top + 2)}" width="14" height="14" rx="3"/>'
            f'<text x="{_f(x)}" y="{_f(top + 13)}" text-anchor="middle">{letter}</text></g>'
        )
    top += 18 + 10 + TITLE_H
    # temperature
    h = 110.0
    lo, hi = _range(data.temperature, 35.5, 40.5, 0.3)
    y = _yscale(lo, hi, top, h)
    _panel(svg, top, h, gettext("Temperature (°C)"), [t for t in range(int(lo) + 1, int(hi) + 1)], y)
    svg.line(LEFT, y(fever_c), LEFT + PLOT_W, y(fever_c), "c-threshold")
    svg.text(
        LEFT + PLOT_W - 4,
        y(fever_c) - 3,
        gettext("fever ≥ %(t)s °C") % {"t": fmt_number(fever_c)},
        "c-threshold-label",
        "end",
    )
    _series(svg, data.temperature, y, "c-temp", "°C", gettext("Temperature"))
    top += h + 10 + TITLE_H
    # blood pressure + vasopressors
    lo, hi = _range(data.sbp + data.dbp, 40, 180, 10)
    y = _yscale(lo, hi, top, h)
    ticks = [v for v in range(40, int(hi) + 1, 30) if v >= lo]
    _panel(svg, top, h, gettext("Blood pressure (mmHg)"), ticks, y)
    svg.line(LEFT, y(sbp_low), LEFT + PLOT_W, y(sbp_low), "c-threshold")
    svg.text(
        LEFT + PLOT_W - 4,
        y(sbp_low) + 12,
        gettext("systolic < %(v)s") % {"v": fmt_number(sbp_low, 0)},
        "c-threshold-label",
        "end",
    )
    _series(svg, data.sbp, y, "c-sbp", "mmHg", gettext("Systolic"))
    _series(svg, data.dbp, y, "c-dbp", "mmHg", gettext("Diastolic"))
    top += h + 4
    top += _spans(svg, data.vasopressors, top, "c-pressor", gettext("no vasopressor")) + 8 + TITLE_H
    # SpO2 + oxygen
    h2 = 80.0
    lo, hi = _range(data.spo2, 85, 100, 1)
    hi = min(hi, 100.0)
    y = _yscale(lo, hi, top, h2)
    ticks = [v for v in (80, 85, 90, 95, 100) if lo <= v <= hi]
    _panel(svg, top, h2, gettext("SpO2 (%)"), ticks, y)
    _series(svg, data.spo2, y, "c-spo2", "%", "SpO2")
    top += h2 + 4
    top += _spans(svg, data.oxygen, top, "c-oxygen", gettext("no oxygen support")) + 8 + TITLE_H
    # grades with episodes
    h3 = 70.0
    y = _yscale(0, 4, top, h3)
    _panel(svg, top, h3, gettext("Grades (shaded: episodes)"), [0, 1, 2, 3, 4], y)
    for ep in data.episodes:
        x1, x2 = svg.x(ep.start), svg.x(ep.end or data.t1)
        name = data.scale_names.get(ep.scale, ep.scale)
        end = fmt_datetime(ep.end) if ep.end else gettext("ongoing")
        tip = gettext("%(scale)s episode, peak grade %(peak)d: %(start)s → %(end)s") % {
            "scale": name,
            "peak": ep.peak,
            "start": fmt_datetime(ep.start),
            "end": end,
        }
        cls = "c-ep-crs" if ep.scale.endswith(":crs") else "c-ep-icans"
        svg.add(
            f'<rect x="{_f(x1)}" y="{_f(top)}" width="{_f(max(x2 - x1, 2.0))}" height="{_f(h3)}" '
            f'class="{cls}"><title>{escape(tip)}</title></rect>'
        )
    by_scale: dict[str, list[GradeStep]] = {}
    for g in sorted(data.grades, key=lambda g: g.t):
        by_scale.setdefault(g.scale, []).append(g)
    for scale, steps in sorted(by_scale.items()):
        cls = "c-crs" if scale.endswith(":crs") else "c-icans"
        pts: list[str] = []
        for i, g in enumerate(steps):
            if g.grade is None:
                continue
            x1 = svg.x(g.t)
            x2 = svg.x(steps[i + 1].t) if i + 1 < len(steps) else svg.x(data.t1)
            pts += [f"{_f(x1)},{_f(y(g.grade))}", f"{_f(x2)},{_f(y(g.grade))}"]
            name = data.scale_names.get(scale, scale)
            tip = gettext("%(scale)s grade %(grade)d from %(time)s") % {
                "scale": name,
                "grade": g.grade,
                "time": fmt_datetime(g.t),
            }
            if not g.complete and g.hi > g.grade:
                tip += " — " + gettext("lower bound, up to %(hi)d") % {"hi": g.hi}
            svg.add(
                f'<circle cx="{_f(x1)}" cy="{_f(y(g.grade))}" r="3" class="{cls} c-dot">'
                f"<title>{escape(tip)}</title></circle>"
            )
        if pts:
            svg.add(f'<polyline points="{" ".join(pts)}" class="{cls} c-line"/>')
    legend_y = top + h3 + 36
    top += h3
    body = svg.parts
    svg.parts = []
    _time_axis(svg, axis_top, top)  # drawn first, under the data
    svg.parts += body
    # legend (words and line styles, not colour alone)
    items = [
        ("c-temp", gettext("temperature")),
        ("c-sbp", gettext("systolic")),
        ("c-dbp", gettext("diastolic (dashed)")),
        ("c-spo2", "SpO2"),
        ("c-crs", data.scale_names.get("astct2019:crs", "CRS")),
        ("c-icans", data.scale_names.get("astct2019:icans", "ICANS") + " " + gettext("(dashed)")),
    ]
    x = float(LEFT)
    for cls, name in items:
        svg.line(x, legend_y - 4, x + 18, legend_y - 4, f"{cls} c-line")
        svg.text(x + 22, legend_y, name, "c-legend")
        x += 30 + 7.2 * len(name)
    height = legend_y + 10
    title = gettext("Timeline from %(start)s to %(end)s") % {
        "start": fmt_datetime(data.t0),
        "end": fmt_datetime(data.t1),
    }
    desc = describe(data)
    head = (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {_f(height)}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{title_id}">{escape(title)}</title><desc id="{desc_id}">{escape(desc)}</desc>'
    )
    return Markup(head + "".join(svg.parts) + "</svg>")


def describe(data: ChartData) -> str:
    """A sentence summarising the chart for screen readers."""
    parts: list[str] = []
    if data.temperature:
        parts.append(
            gettext("%(n)d temperatures, highest %(max)s °C")
            % {
                "n": len(data.temperature),
                "max": fmt_number(max(p.v for p in data.temperature)),
            }
        )
    if data.sbp:
        parts.append(
            gettext("%(n)d systolic pressures, lowest %(min)s mmHg")
            % {
                "n": len(data.sbp),
                "min": fmt_number(min(p.v for p in data.sbp), 0),
            }
        )
    if data.spo2:
        parts.append(
            gettext("%(n)d SpO2 readings, lowest %(min)s %%")
            % {
                "n": len(data.spo2),
                "min": fmt_number(min(p.v for p in data.spo2), 0),
            }
        )
    parts.append(gettext("%(n)d oxygen periods") % {"n": len(data.oxygen)})
    parts.append(gettext("%(n)d vasopressor periods") % {"n": len(data.vasopressors)})
    parts.append(gettext("%(n)d treatment doses") % {"n": len(data.markers)})
    parts.append(gettext("%(n)d toxicity episodes") % {"n": len(data.episodes)})
    return "; ".join(parts) + "."
