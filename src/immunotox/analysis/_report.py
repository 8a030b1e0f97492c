"""The cohort report: self-contained HTML (inline SVG plots as data URIs), its PDF, and the ARD.

Every number printed comes from the ARD (``ard.parquet``) and its cell carries the ARD id
(``data-ard``, shown on hover). Texts come from the catalogue ``data/analysis/report.toml``
(French and English side by side); numbers are formatted for the language (Babel). No network
resource and no script: the HTML opens offline, and WeasyPrint renders the same page to PDF.
"""

from __future__ import annotations

import base64
import functools
import html
import math
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
from babel.numbers import format_decimal

from ..errors import RuleSpecError
from ._cohort import CATEGORIES, CohortAnalysis, family
from ._errors import AnalysisError

LANGS = ("fr", "en")
SWIMMER_MAX = 200
GRADE_COLOURS = ("#d9d9d9", "#fee08b", "#fdae61", "#f46d43", "#d73027", "#67001f")
SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
CAT_KEYS = {"any": "cat_any", "1-2": "cat_low", ">=3": "cat_high", "5": "cat_5"}


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """The report texts by key, each with every language (checked on load)."""
    where = "data/analysis/report.toml"
    raw = tomllib.loads(resources.files("immunotox").joinpath(where).read_text("utf-8"))
    texts: dict[str, dict[str, str]] = raw["text"]
    for key, entry in texts.items():
        missing = [lang for lang in LANGS if not entry.get(lang)]
        if missing:
            raise RuleSpecError(f"{where}: text {key!r} has no {', '.join(missing)} version")
    return texts


class _Page:
    def __init__(self, analysis: CohortAnalysis, lang: str) -> None:
        self.a = analysis
        self.lang = lang
        self.ard = analysis.ard
        self.texts = catalogue()
        index: dict[tuple[str, str, str, str, str], tuple[str, float | None, int | None]] = {}
        for ard_id, an, group, stratum, cat, stat, value, n in analysis.ard.select(
            "ard_id", "analysis", "group", "stratum", "category", "statistic", "value", "n"
        ).iter_rows():
            index[(an, group, stratum, cat, stat)] = (ard_id, value, n)
        self.index = index

    def stratum(self, stratum: str) -> str:
        """``all`` or ``variable=level`` in the report's language (levels are data: kept as written)."""
        if stratum == "all":
            return self.t("all")
        var, _, level = stratum.partition("=")
        return (
            f"{self.t('var_' + var)} : {html.escape(level)}"
            if self.lang == "fr"
            else f"{self.t('var_' + var)}: {html.escape(level)}"
        )

    def t(self, key: str, **fmt: Any) -> str:
        text = self.texts[key][self.lang]
        return html.escape(text.format(**fmt) if fmt else text)

    def num(self, value: float | None, digits: int = 1) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        if digits == 0:
            return format_decimal(round(value), format="#,##0", locale=self.lang)
        return format_decimal(value, format="#,##0." + "0" * digits, locale=self.lang)

    def get(self, *key: str) -> tuple[str, float | None]:
        ard_id, value, _n = self.index.get(key, ("", None, None))  # type: ignore[arg-type]
        return ard_id, value

    def cell(self, parts: Sequence[tuple[str, str]], fmt: Callable[[list[str]], str]) -> str:
        """A table cell from ARD statistics: ``parts`` is [(ard_id, text)], ``fmt`` joins the texts."""
        ids = " ".join(i for i, _ in parts if i)
        return f'<td data-ard="{ids}" title="{ids}">{fmt([p for _, p in parts])}</td>'


def _svg_open(width: float, height: float, font_size: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, sans-serif" font-size="{font_size}">'
    )


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _img(svg: str, alt: str) -> str:
    return f'<img class="plot" alt="{alt}" src="{_svg_uri(svg)}">'


def _step_plot(
    series: list[tuple[str, pl.DataFrame]],
    x_max: float,
    ticks: Sequence[float],
    x_label: str,
    at_risk_label: str,
    y_label: str,
    min_cell: int | None,
    fmt: Callable[[float | None, int], str],
    scale_x: float = 1.0,
) -> str:
    """Step curves (value in [0, 1]) with their numbers at risk at each tick under the axis."""
    w, left, right, top, h = 680, 170, 20, 15, 220
    rows = len(series)
    height = top + h + 45 + 18 * (rows + 1)
    sx = (w - left - right) / x_max
    parts = [_svg_open(w, height, 11)]
    parts.append(f'<line x1="{left}" y1="{top + h}" x2="{w - right}" y2="{top + h}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>')
    for y in (0.0, 0.25, 0.5, 0.75, 1.0):
        yy = top + h - y * h
        parts.append(f'<line x1="{left - 4}" y1="{yy}" x2="{left}" y2="{yy}" stroke="#333"/>')
        parts.append(f'<text x="{left - 7}" y="{yy + 4}" text-anchor="end">{fmt(100 * y, 0)}</text>')
    parts.append(f'<text x="{left - 40}" y="{top + h / 2}" text-anchor="middle">{y_label}</text>')
    for tick in ticks:
        xx = left + tick * sx
        parts.append(f'<line x1="{xx}" y1="{top + h}" x2="{xx}" y2="{top + h + 4}" stroke="#333"/>')
        parts.append(
            f'<text x="{xx}" y="{top + h + 16}" text-anchor="middle">{fmt(tick / scale_x, 0)}</text>'
        )
    parts.append(
        f'<text x="{left + (w - left - right) / 2}" y="{top + h + 32}" text-anchor="middle">{x_label}</text>'
    )
    base = top + h + 50
    parts.append(f'<text x="4" y="{base}" font-weight="bold">{at_risk_label}</text>')
    for i, (name, curve) in enumerate(series):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        times = curve["time"].to_list()
        values = curve["value"].to_list()
        at_risk = curve["n_at_risk"].to_list()
        x0, y0 = left, top + h - (0.0 if curve["curve"][0] != "survival" else 1.0) * h
        path = [f"M{x0:.1f},{y0:.1f}"]
        steps: list[list[str]] = []  # [x, y] of each drawn step, at the 0.1 px the path is written in
        last_y = f"{y0:.1f}"
        for t, v in zip(times, values, strict=True):
            if t > x_max:
                break
            xs, ys = f"{left + t * sx:.1f}", f"{top + h - v * h:.1f}"
            if ys == last_y:  # no visible step
                continue
            if steps and steps[-1][0] == xs:  # same pixel column: the curve is monotone, keep the end
                steps[-1][1] = ys
            else:
                steps.append([xs, ys])
            last_y = ys
        path += [f"H{x}V{y}" for x, y in steps]
        path.append(f"H{left + x_max * sx:.1f}")
        parts.append(f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        y_row = base + 18 * (i + 1)
        parts.append(f'<text x="4" y="{y_row}" fill="{colour}">{html.escape(name[:24])}</text>')
        total = len(times)
        for tick in ticks:
            # number at risk just before the tick: first time >= tick, else those left after the last
            n = next((r for t, r in zip(times, at_risk, strict=True) if t >= tick), None)
            if n is None:
                n = 0 if total else None
            label = fmt(n, 0) if n is not None else "—"
            if min_cell and n is not None and 0 < n < min_cell:
                label = f"&lt;{min_cell}"
            parts.append(f'<text x="{left + tick * sx}" y="{y_row}" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _swimmer_svg(swimmer: pl.DataFrame, scales: list[str], x_max: float, day: str) -> tuple[str, int, int]:
    sub = swimmer.filter(pl.col("scale").is_in(scales))
    n_total = sub["patient_id"].n_unique()
    order = (
        sub.group_by("patient_id")
        .agg(pl.col("grade").max().alias("worst"), pl.col("start_day").min().alias("first"))
        .sort(["worst", "first", "patient_id"], descending=[True, False, False])
        .head(SWIMMER_MAX)
    )
    ids = order["patient_id"].to_list()
    row_h = 6 if len(ids) > 60 else 12
    w, left, top = 640, 70, 10
    h = top + row_h * len(ids) + 40
    sx = (w - left - 20) / x_max
    parts = [_svg_open(w, h, 10)]
    pos = {pid: i for i, pid in enumerate(ids)}
    lanes = {s: k for k, s in enumerate(scales)}
    for pid, scale, start, end, grade in (
        sub.filter(pl.col("patient_id").is_in(ids))
        .select("patient_id", "scale", "start_day", "end_day", "grade")
        .iter_rows()
    ):
        y = top + pos[pid] * row_h + lanes.get(scale, 0) * row_h / len(scales)
        x1 = left + max(0.0, start) * sx
        x2 = left + min(x_max, end if end is not None else x_max) * sx
        colour = GRADE_COLOURS[min(int(grade or 0), 5)]
        parts.append(
            f'<rect x="{x1:.1f}" y="{y:.1f}" width="{max(1.0, x2 - x1):.1f}" '
            f'height="{row_h / len(scales) - 0.5:.1f}" fill="{colour}"/>'
        )
    base = top + row_h * len(ids)
    parts.append(f'<line x1="{left}" y1="{base + 2}" x2="{w - 20}" y2="{base + 2}" stroke="#333"/>')
    for d in range(0, int(x_max) + 1, 7):
        parts.append(f'<text x="{left + d * sx}" y="{base + 16}" text-anchor="middle">{d}</text>')
    parts.append(f'<text x="{left + (w - left) / 2}" y="{base + 32}" text-anchor="middle">{day}</text>')
    for g in range(1, 6):
        parts.append(
            f'<rect x="4" y="{top + (g - 1) * 12}" width="10" height="8" fill="{GRADE_COLOURS[g]}"/>'
            f'<text x="18" y="{top + (g - 1) * 12 + 8}">{g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts), len(ids), n_total


def _forest_svg(
    rows: list[tuple[str, float | None, float | None, float | None]], fmt: Callable[[float | None, int], str]
) -> str:
    w, left, right, top, row_h = 640, 160, 110, 10, 18
    h = top + row_h * len(rows) + 35
    hi = max([u for _, _, _, u in rows if u is not None] + [10.0])
    x_max = min(100.0, math.ceil(hi / 10) * 10)
    sx = (w - left - right) / x_max
    parts = [_svg_open(w, h, 11)]
    for i, (label, pct, lo, up) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{html.escape(label)}</text>')
        if pct is None or lo is None or up is None:
            parts.append(f'<text x="{left + 4}" y="{y + 4}">—</text>')
            continue
        parts.append(
            f'<line x1="{left + lo * sx:.1f}" y1="{y}" x2="{left + up * sx:.1f}" y2="{y}" stroke="#333"/>'
        )
        parts.append(f'<rect x="{left + pct * sx - 4:.1f}" y="{y - 4}" width="8" height="8" fill="#1f77b4"/>')
        parts.append(
            f'<text x="{w - right + 6}" y="{y + 4}">{fmt(pct, 1)} ({fmt(lo, 1)}–{fmt(up, 1)})</text>'
        )
    base = top + row_h * len(rows) + 4
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + x_max * sx}" y2="{base}" stroke="#333"/>')
    for v in range(0, int(x_max) + 1, max(10, int(x_max) // 5)):
        parts.append(f'<text x="{left + v * sx}" y="{base + 14}" text-anchor="middle">{v} %</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 10.5pt; margin: 1.5em; color: #222; }
h1 { font-size: 17pt; } h2 { font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #bbb; }
h3 { font-size: 11pt; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 9pt; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th:first-child, td:first-child, td.label { text-align: left; }
.note { color: #555; font-size: 9pt; }
.warn { background: #fff4e0; border-left: 4px solid #f0a020; padding: 4px 8px; }
img.plot { display: block; max-width: 100%; margin: 0.5em 0; }
@page { size: A4 landscape; margin: 1cm; }
@media print {
  body { margin: 0; font-size: 9pt; }
  table { font-size: 7pt; }
  th, td { padding: 1px 3px; }
  h2 { break-before: auto; }
  img.plot { max-width: 60%; }
}
"""


def render_html(analysis: CohortAnalysis, lang: str) -> str:
    """The whole report as one HTML document (no external resource)."""
    if lang not in LANGS:
        raise AnalysisError("--lang", lang, "fr or en")
    from .. import __version__

    p = _Page(analysis, lang)
    meta = analysis.meta
    scales: list[str] = meta["scales"]
    out: list[str] = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{p.t('title')}</title><style>{CSS}</style></head><body>",
        f"<h1>{p.t('title')}</h1>",
        f'<p class="warn">{p.t("disclaimer")}</p>',
        f"<p>{p.t('summary', n=meta['patients'], scales=', '.join(scales))}</p>",
        f"<p>{p.t('rejects', n=meta['clinical_rejects'], orphans=meta['timeline_only_patients'])}</p>",
        "<p>"
        + (p.t("min_cell_on", below=meta["min_cell"] - 1) if meta.get("min_cell") else p.t("min_cell_off"))
        + "</p>",
        f'<p class="note">{p.t("ard_note")}</p>',
    ]
    # ---------------------------------------------------------------- incidence
    out.append(f"<h2>{p.t('incidence')}</h2><p class='note'>{p.t('incidence_note')}</p>")
    strata = list(dict.fromkeys(analysis.ard.filter(pl.col("analysis") == "incidence")["stratum"].to_list()))
    for scale in scales:
        out.append(f"<h3>{html.escape(scale)}</h3><table><tr><th>{p.t('stratum')}</th><th>{p.t('n')}</th>")
        for label, _a, _b in CATEGORIES:
            out.append(
                f"<th>{p.t(CAT_KEYS[label])}<br>{p.t('established')}</th><th>{p.t('upper_bound')}</th>"
            )
        out.append(f"<th>{p.t('not_determinable')}</th><th>{p.t('not_applicable')}</th></tr>")
        for stratum in strata:
            name = p.stratum(stratum)
            n_id, n_val = p.get("incidence", scale, stratum, "any", "n_patients")
            out.append(f"<tr><td class='label'>{name}</td>" + p.cell([(n_id, p.num(n_val, 0))], "".join))
            for label, _a, _b in CATEGORIES:
                keys = ("n_established", "pct_established", "lower_established", "upper_established")
                got = [p.get("incidence", scale, stratum, label, k) for k in keys]
                digits = (0, 1, 1, 1)
                parts = [(i, p.num(v, d)) for (i, v), d in zip(got, digits, strict=True)]
                out.append(p.cell(parts, lambda s: f"{s[0]} ({s[1]} %; {s[2]}–{s[3]})"))
                up = [
                    p.get("incidence", scale, stratum, label, k) for k in ("n_upper_bound", "pct_upper_bound")
                ]
                out.append(
                    p.cell(
                        [(up[0][0], p.num(up[0][1], 0)), (up[1][0], p.num(up[1][1], 1))],
                        lambda s: f"{s[0]} ({s[1]} %)",
                    )
                )
            for k in ("n_not_determinable", "n_not_applicable"):
                i, v = p.get("incidence", scale, stratum, "any", k)
                out.append(p.cell([(i, p.num(v, 0))], "".join))
            out.append("</tr>")
        out.append("</table>")
    # forest plot: grade >= 3 by product, first scale of each family
    products = [s for s in strata if s.startswith("product=")]
    for scale in [s for s in scales if family(s) is not None][:1] + [
        s for s in scales if family(s) == "icans"
    ][:1]:
        rows = []
        for s in ["all", *products]:
            vals = [
                p.get("incidence", scale, s, ">=3", k)[1]
                for k in ("pct_established", "lower_established", "upper_established")
            ]
            rows.append(
                (p.texts["all"][lang] if s == "all" else s.split("=", 1)[1], vals[0], vals[1], vals[2])
            )
        out.append(f"<h3>{p.t('forest')} — {html.escape(scale)}</h3>")
        out.append(_img(_forest_svg(rows, p.num), p.t("forest")))
    # ---------------------------------------------------------------- onset
    out.append(
        f"<h2>{p.t('onset')}</h2><table><tr><th>{p.t('scale')}</th><th>{p.t('onset_day')}<br>{p.t('median_iqr_range')}</th><th>{p.t('duration_days')}<br>{p.t('median_iqr_range')}</th><th>{p.t('unresolved')}</th></tr>"
    )
    for scale in scales:
        out.append(f"<tr><td class='label'>{html.escape(scale)}</td>")
        for an, cat in (("onset", "onset_day"), ("duration", "duration_days")):
            got = [p.get(an, scale, "all", cat, k) for k in ("median", "q1", "q3", "min", "max")]
            out.append(
                p.cell(
                    [(i, p.num(v, 1)) for i, v in got], lambda s: f"{s[0]} [{s[1]}–{s[2]}] ({s[3]}–{s[4]})"
                )
            )
        i, v = p.get("duration", scale, "all", "duration_days", "n_unresolved")
        out.append(p.cell([(i, p.num(v, 0))], "".join) + "</tr>")
    out.append("</table>")
    # cumulative incidence plot with numbers at risk
    fam_scales = [s for s in scales if family(s) is not None]
    firsts = [
        next(s for s in fam_scales if family(s) == f) for f in dict.fromkeys(family(s) for s in fam_scales)
    ]
    onset_series = []
    for scale in firsts:
        c = analysis.curves.filter((pl.col("curve") == "onset") & (pl.col("group") == scale))
        if c.height:
            onset_series.append((scale, c))
    if onset_series:
        out.append(f"<h3>{p.t('time_to_onset')}</h3>")
        out.append(
            _img(
                _step_plot(
                    onset_series,
                    28.0,
                    (0, 7, 14, 21, 28),
                    p.t("day"),
                    p.t("at_risk"),
                    "%",
                    meta.get("min_cell"),
                    p.num,
                ),
                p.t("time_to_onset"),
            )
        )
    out.append(
        f"<table><tr><th>{p.t('scale')}</th>"
        + "".join(f"<th>{p.t('day')} {d}</th>" for d in (7, 14, 28))
        + f"<th colspan=2>{p.t('new_onset')}</th></tr>"
    )
    for scale in scales:
        out.append(f"<tr><td class='label'>{html.escape(scale)}</td>")
        for d in (7, 14, 28):
            got = [p.get("time_to_onset", scale, "all", f"day {d}", k) for k in ("cif", "lower", "upper")]
            out.append(
                p.cell(
                    [(i, p.num(None if v is None else 100 * v, 1)) for i, v in got],
                    lambda s: f"{s[0]} % ({s[1]}–{s[2]})",
                )
            )
        for d in (7, 14):
            got = [
                p.get("new_onset", scale, "all", f"after day {d}", k) for k in ("n_new", "n_at_risk", "pct")
            ]
            out.append(
                p.cell(
                    [
                        (got[0][0], p.num(got[0][1], 0)),
                        (got[1][0], p.num(got[1][1], 0)),
                        (got[2][0], p.num(got[2][1], 1)),
                    ],
                    lambda s: f"{s[0]}/{s[1]} ({s[2]} %)",
                )
            )
        out.append("</tr>")
    out.append("</table>")
    # swimmer
    if firsts and analysis.swimmer.height:
        svg, shown, total = _swimmer_svg(analysis.swimmer, firsts, 30.0, p.t("day"))
        out.append(
            f"<h2>{p.t('swimmer')}</h2><p class='note'>{html.escape(', '.join(firsts))}. "
            + (p.t("swimmer_cap", shown=shown, n=total) if shown < total else p.t("swimmer_all", n=total))
            + "</p>"
        )
        out.append(_img(svg, p.t("swimmer")))
    # ---------------------------------------------------------------- agreement
    pairs = list(dict.fromkeys(analysis.ard.filter(pl.col("analysis") == "agreement")["group"].to_list()))
    if pairs:
        out.append(
            f"<h2>{p.t('agreement')}</h2><p class='note'>{p.t('agreement_note')}</p><table><tr><th></th>"
        )
        for k in (
            "complete_pairs",
            "lower_bound_pairs",
            "not_determinable_pairs",
            "kappa_linear",
            "kappa_quadratic",
        ):
            out.append(f"<th>{p.t(k)}</th>")
        out.append("</tr>")
        for pair in pairs:
            out.append(f"<tr><td class='label'>{html.escape(pair)}</td>")
            for k in ("n_complete_pairs", "n_lower_bound_pairs", "n_not_determinable_pairs"):
                i, v = p.get("agreement", pair, "all", "pairs", k)
                out.append(p.cell([(i, p.num(v, 0))], "".join))
            for k in ("kappa_linear", "kappa_quadratic"):
                i, v = p.get("agreement", pair, "all", "kappa", k)
                out.append(p.cell([(i, p.num(v, 3))], "".join))
            out.append("</tr>")
        out.append("</table>")
    # ---------------------------------------------------------------- outcomes
    out.append(f"<h2>{p.t('outcomes')}</h2><h3>{p.t('response')}</h3><table>")
    for g in ("ORR", "CR"):
        got = [p.get("response", g, "all", "rate", k) for k in ("n_responders", "pct", "lower", "upper")]
        out.append(f"<tr><td class='label'>{p.t(g)}</td>")
        out.append(
            p.cell(
                [(i, p.num(v, 0 if j == 0 else 1)) for j, (i, v) in enumerate(got)],
                lambda s: f"{s[0]} ({s[1]} %; {s[2]}–{s[3]})",
            )
            + "</tr>"
        )
    out.append(
        f"</table><h3>{p.t('survival')}</h3><table><tr><th></th><th>{p.t('median_months')}</th><th>{p.t('at_6')}</th><th>{p.t('at_12')}</th></tr>"
    )
    for g in ("OS", "PFS", "DOR"):
        out.append(f"<tr><td class='label'>{p.t(g)}</td>")
        i, v = p.get("survival", g, "all", "median", "months")
        out.append(p.cell([(i, p.num(v, 1))], "".join))
        for m in (6, 12):
            got = [p.get("survival", g, "all", f"{m} months", k) for k in ("survival", "lower", "upper")]
            out.append(
                p.cell(
                    [(i, p.num(None if v is None else 100 * v, 1)) for i, v in got],
                    lambda s: f"{s[0]} % ({s[1]}–{s[2]})",
                )
            )
        out.append("</tr>")
    out.append(f"<tr><td class='label'>{p.t('NRM')}</td><td>—</td>")
    for m in (6, 12):
        got = [p.get("nrm", "NRM", "all", f"{m} months", k) for k in ("cif", "lower", "upper")]
        out.append(
            p.cell(
                [(i, p.num(None if v is None else 100 * v, 1)) for i, v in got],
                lambda s: f"{s[0]} % ({s[1]}–{s[2]})",
            )
        )
    out.append("</tr></table>")
    surv_series = []
    for g in ("OS", "PFS"):
        c = analysis.curves.filter((pl.col("curve") == "survival") & (pl.col("group") == g))
        if c.height:
            surv_series.append((p.texts[g][lang], c))
    if surv_series:
        month = 30.4375
        out.append(
            _img(
                _step_plot(
                    surv_series,
                    24 * month,
                    [m * month for m in (0, 6, 12, 18, 24)],
                    p.t("month"),
                    p.t("at_risk"),
                    "%",
                    meta.get("min_cell"),
                    p.num,
                    scale_x=month,
                ),
                p.t("survival"),
            )
        )
    # ---------------------------------------------------------------- management
    mgmt = analysis.ard.filter(pl.col("analysis") == "management")
    if mgmt.height:
        out.append(f"<h2>{p.t('management')}</h2><table>")
        crs_group = next((g for g in mgmt["group"].unique().to_list() if family(g) == "crs"), None)
        if crs_group is not None:
            got = [
                p.get("management", crs_group, "all", "grade >= 2", k)
                for k in ("n_tocilizumab", "n_patients")
            ]
            out.append(f"<tr><td class='label'>{p.t('toci_given')} ({html.escape(crs_group)})</td>")
            out.append(p.cell([(i, p.num(v, 0)) for i, v in got], lambda s: f"{s[0]} / {s[1]}") + "</tr>")
            got = [
                p.get("management", crs_group, "all", "hours to tocilizumab", k)
                for k in ("median", "q1", "q3", "min", "max")
            ]
            out.append(f"<tr><td class='label'>{p.t('toci_hours')}</td>")
            out.append(
                p.cell(
                    [(i, p.num(v, 1)) for i, v in got], lambda s: f"{s[0]} [{s[1]}–{s[2]}] ({s[3]}–{s[4]})"
                )
                + "</tr>"
            )
        for key, stat in (
            ("toci_doses", "n_doses"),
            ("toci_above", "n_above_dose"),
            ("toci_limits", "n_outside_limits"),
            ("toci_unchecked", "n_unchecked"),
        ):
            i, v = p.get("management", "tocilizumab", "all", "doses", stat)
            out.append(
                f"<tr><td class='label'>{p.t(key)}</td>" + p.cell([(i, p.num(v, 0))], "".join) + "</tr>"
            )
        i, v = p.get("management", "corticosteroids", "all", "patients", "n_treated")
        out.append(
            f"<tr><td class='label'>{p.t('steroid_treated')}</td>"
            + p.cell([(i, p.num(v, 0))], "".join)
            + "</tr>"
        )
        got = [
            p.get("management", "corticosteroids", "all", "dexamethasone mg", k)
            for k in ("median", "q1", "q3", "min", "max")
        ]
        out.append(f"<tr><td class='label'>{p.t('steroid_dex')}</td>")
        out.append(
            p.cell([(i, p.num(v, 0)) for i, v in got], lambda s: f"{s[0]} [{s[1]}–{s[2]}] ({s[3]}–{s[4]})")
            + "</tr>"
        )
        i, v = p.get("management", "icu", "all", "patients", "n_admitted")
        label = p.t("icu_admitted")
        out.append(f"<tr><td class='label'>{label}</td>" + p.cell([(i, p.num(v, 0))], "".join) + "</tr>")
        got = [p.get("management", "icu", "all", "icu days", k) for k in ("median", "q1", "q3", "min", "max")]
        out.append(f"<tr><td class='label'>{p.t('icu_days')}</td>")
        out.append(
            p.cell([(i, p.num(v, 1)) for i, v in got], lambda s: f"{s[0]} [{s[1]}–{s[2]}] ({s[3]}–{s[4]})")
            + "</tr>"
        )
        out.append(f"</table><p class='note'>{p.t('management_note')}</p>")
    # ---------------------------------------------------------------- association
    assoc = analysis.ard.filter(pl.col("analysis") == "association")
    if assoc.height:
        group = assoc["group"][0]
        out.append(
            f"<h2>{p.t('association')}</h2><p>{html.escape(group)}</p><table><tr><th></th><th>{p.t('events')}</th><th>{p.t('odds_ratio')}</th><th>{p.t('auc')}</th></tr>"
        )
        for label in dict.fromkeys(assoc["category"].to_list()):
            out.append(f"<tr><td class='label'>{p.t('score_' + label)}</td>")
            ev = [p.get("association", group, "all", label, k) for k in ("n_events", "n_patients")]
            out.append(p.cell([(i, p.num(v, 0)) for i, v in ev], lambda s: f"{s[0]} / {s[1]}"))
            orr = [p.get("association", group, "all", label, k) for k in ("odds_ratio", "lower", "upper")]
            auc = [p.get("association", group, "all", label, k) for k in ("auc", "auc_lower", "auc_upper")]
            for got in (orr, auc):
                if got[0][1] is None:
                    out.append(p.cell([(got[0][0], p.t("not_estimable"))], "".join))
                else:
                    out.append(
                        p.cell([(i, p.num(v, 2)) for i, v in got], lambda s: f"{s[0]} ({s[1]}–{s[2]})")
                    )
            out.append("</tr>")
        out.append("</table>")
    out.append(
        f"<p class='note'>{p.t('methods')}</p>"
        f"<p class='note'>{p.t('synthetic', version=__version__)}</p></body></html>"
    )
    return "".join(out)


def write_report(
    analysis: CohortAnalysis,
    out_dir: str | Path,
    lang: str,
    *,
    pdf: bool = True,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.pdf`` (WeasyPrint), ``ard.parquet`` (and the clinical rejects)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = render_html(analysis, lang)
    files = {"html": out / "report.html", "ard": out / "ard.parquet"}
    files["html"].write_text(page, "utf-8")
    analysis.ard.write_parquet(files["ard"])
    files["rejects"] = out / "clinical_rejects.parquet"
    analysis.clinical_rejects.write_parquet(files["rejects"])
    if pdf:
        from weasyprint import HTML

        files["pdf"] = out / "report.pdf"
        HTML(string=page, base_url=str(out)).write_pdf(files["pdf"])
    return files
