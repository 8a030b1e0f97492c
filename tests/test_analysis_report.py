"""End to end: simulate → timeline → report (HTML, PDF, ARD), counts equal to the ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from immunotox.analysis import ard_value
from immunotox.analysis._report import catalogue
from immunotox.cli.main import app

from .analysis_helpers import assert_complete_counts_equal_truth

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("e2e")
    r = runner.invoke(
        app,
        [
            "simulate",
            "--patients",
            "150",
            "--seed",
            "3",
            "--out",
            str(d / "obs.parquet"),
            "--truth",
            str(d / "truth.parquet"),
            "--clinical-out",
            str(d / "clinical.parquet"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "timeline",
            str(d / "obs.parquet"),
            "--scales",
            "astct2019:crs,lee2014:crs,astct2019:icans",
            "--out",
            str(d / "results"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "report",
            str(d / "results"),
            "--clinical",
            str(d / "clinical.parquet"),
            "--out",
            str(d / "report"),
            "--lang",
            "fr",
            "--observations",
            str(d / "obs.parquet"),
        ],
    )
    assert r.exit_code == 0, r.output
    return d


def test_report_files_and_ground_truth(run: Path) -> None:
    report = run / "report"
    assert (report / "report.pdf").read_bytes().startswith(b"%PDF")
    ard = pl.read_parquet(report / "ard.parquet")
    assert {"ard_id", "analysis", "stratum", "statistic", "value", "n", "method"} <= set(ard.columns)
    truth = pl.read_parquet(run / "truth.parquet")
    assert_complete_counts_equal_truth(ard, truth, pl.read_parquet(run / "results" / "patients.parquet"))


def test_management_against_the_ground_truth(run: Path) -> None:
    ard = pl.read_parquet(run / "report" / "ard.parquet")
    truth = pl.read_parquet(run / "truth.parquet")

    def v(group: str, category: str, statistic: str) -> float | None:
        return ard_value(
            ard, analysis="management", group=group, stratum="all", category=category, statistic=statistic
        )

    assert v("tocilizumab", "doses", "n_doses") == truth["tocilizumab_doses"].sum() > 0
    # the simulator never breaks the label limits (docs/simulator.md): nothing flagged
    assert v("tocilizumab", "doses", "n_above_dose") == 0
    assert v("tocilizumab", "doses", "n_outside_limits") == 0
    assert v("tocilizumab", "doses", "n_unchecked") == 0
    treated = truth.filter(pl.col("crs_corticosteroids"))["patient_id"].to_list()
    assert v("corticosteroids", "patients", "n_treated") >= len(treated)  # CRS and ICANS steroids
    page = (run / "report" / "report.html").read_text("utf-8")
    assert catalogue()["management"]["fr"] in page


def test_html_is_self_contained_french_and_every_number_has_its_ard_id(run: Path) -> None:
    page = (run / "report" / "report.html").read_text("utf-8")
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    texts = catalogue()
    assert texts["title"]["fr"] in page and texts["title"]["en"] not in page
    assert texts["incidence"]["fr"] in page
    ard = pl.read_parquet(run / "report" / "ard.parquet")
    ids = set(ard["ard_id"].to_list())
    cells = re.findall(r'<td data-ard="([^"]*)"', page)
    assert cells and all(c and set(c.split()) <= ids for c in cells)
    # the number shown for ASTCT CRS any grade, all patients, is the ARD's
    row = ard.filter(
        (pl.col("analysis") == "incidence")
        & (pl.col("group") == "astct2019:crs")
        & (pl.col("stratum") == "all")
        & (pl.col("category") == "any")
        & (pl.col("statistic") == "n_established")
    )
    ard_id, value = row["ard_id"][0], int(row["value"][0])
    cell = re.search(rf'<td data-ard="{ard_id} [^"]*"[^>]*>([^<]*)</td>', page)
    assert cell is not None and cell.group(1).startswith(f"{value} (")
    assert "0,0" in page  # decimal comma in French


def test_english_min_cell_and_bad_arguments(run: Path) -> None:
    out = run / "report_en"
    r = runner.invoke(
        app,
        [
            "report",
            str(run / "results"),
            "--clinical",
            str(run / "clinical.parquet"),
            "--out",
            str(out),
            "--lang",
            "en",
            "--min-cell",
            "5",
            "--no-pdf",
        ],
    )
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text("utf-8")
    assert catalogue()["title"]["en"] in page
    assert "Small-cell suppression applied: counts from 1 to 4" in page
    ard = pl.read_parquet(out / "ard.parquet")
    small = ard.filter(pl.col("statistic").is_in(["n_established"]) & pl.col("value").is_between(1, 4))
    assert small.height == 0
    assert ard["suppressed"].sum() > 0
    for args, message in (
        (["--lang", "de"], "error: --lang = 'de': expected fr or en"),
        (["--min-cell", "x", "--lang", "en"], "error: --min-cell = 'x': expected an integer >= 1"),
        (["--min-cell", "x"], "error: --min-cell = 'x' : attendu : un nombre entier ≥ 1"),  # fr by default
    ):
        r = runner.invoke(
            app,
            [
                "report",
                str(run / "results"),
                "--clinical",
                str(run / "clinical.parquet"),
                "--out",
                str(out),
                *args,
            ],
        )
        assert r.exit_code == 2 and r.output.strip() == message
    r = runner.invoke(
        app, ["report", str(run / "results"), "--clinical", str(run / "nope.parquet"), "--out", str(out)]
    )
    assert r.exit_code == 2
    assert r.output.strip().endswith("nope.parquet': an existing file")


def test_swimmer_plot_keeps_the_200_most_severe_patients_and_says_so() -> None:
    from immunotox.analysis._report import SWIMMER_MAX, _swimmer_svg

    rows = [
        {
            "patient_id": f"P{i:03d}",
            "scale": "astct2019:crs",
            "start_day": 1.0 + i % 5,
            "end_day": 4.0,
            "grade": 4 if i < 30 else 1,
            "resolved": True,
        }
        for i in range(250)
    ]
    svg, shown, total = _swimmer_svg(pl.DataFrame(rows), ["astct2019:crs"], 30.0, "Jour")
    assert (shown, total) == (SWIMMER_MAX, 250) == (200, 250)
    # every grade-4 patient is among those drawn: 30 bars in the grade-4 colour
    assert svg.count('fill="#d73027"') == 30 + 1  # + the legend swatch
    assert (
        catalogue()["swimmer_cap"]["fr"].format(shown=200, n=250)
        == "Les 200 patients les plus sévères sur 250 sont montrés."
    )


def test_a_curve_of_many_steps_is_drawn_once_per_pixel_column() -> None:
    """50,000 distinct times would write 50,000 path steps (WeasyPrint then spends most of the
    report's time parsing them): steps falling in the same 0.1-px column of a monotone curve
    are drawn as one, to the same end point."""
    import re

    import polars as pl

    from immunotox.analysis._report import _step_plot

    n = 20_000
    curve = pl.DataFrame(
        {
            "time": [i / 100 for i in range(1, n + 1)],
            "value": [1 - i / (n + 1) for i in range(1, n + 1)],
            "n_at_risk": list(range(n, 0, -1)),
            "curve": ["survival"] * n,
        }
    )
    svg = _step_plot(
        [("all", curve)], 200.0, [0, 100, 200], "days", "at risk", "%", None, lambda v, d: str(v)
    )
    d = re.search(r'<path d="([^"]+)"', svg)
    assert d is not None
    steps = re.findall(r"H([\d.]+)V([\d.]+)", d.group(1))
    assert len(steps) <= 490 * 10 + 1  # at most one step per 0.1-px column of the 490-px plot
    xs = [float(x) for x, _ in steps]
    assert xs == sorted(set(xs))
    # the drawn curve ends where the last value puts it: 1 - n/(n+1) of 220 px above the axis
    assert float(steps[-1][1]) == round(15 + 220 - (1 - n / (n + 1)) * 220, 1)
