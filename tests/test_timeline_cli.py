"""``immunotox timeline`` through the installed command (subprocess)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from immunotox.simulate import write_cohort

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tl") / "obs.csv"
    write_cohort(path, 8, seed=13, bad_rows_fraction=0.005)
    return path


def test_all_crs_scales_side_by_side(cli: Cli, obs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli("timeline", str(obs), "--scales", "all-crs,astct2019:icans", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "per-patient maximum grade" in r.stdout
    assert "Max grade per patient: astct2019:crs (rows) vs penn:crs (columns)" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accepted_rows"] + summary["rejected_rows"] == summary["input_rows"]
    assert summary["rejected_rows"] > 0 and "rejected" in r.stdout
    assert "penn:crs" in summary["scales"] and "astct2019:icans" in summary["scales"]
    grades = pq.read_table(out / "grades.parquet")
    assert set(grades.column("scale").to_pylist()) >= {"astct2019:crs", "penn:crs", "astct2019:icans"}
    rejects = pq.read_table(out / "rejects.parquet")
    assert rejects.num_rows == summary["rejected_rows"]
    assert rejects.column_names == ["file", "row", "column", "value", "reason", "detail"]


def test_csv_output_and_options(cli: Cli, obs: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    r = cli(
        "timeline",
        str(obs),
        "--out",
        str(out),
        "--format",
        "csv",
        "--resolution-hours",
        "12",
        "--memory-limit",
        "512MB",
        "--threads",
        "1",
    )
    assert r.returncode == 0, r.stderr
    for name in ("grades", "daily_max", "episodes", "patients", "crosstab", "rejects"):
        assert (out / f"{name}.csv").exists(), name
    assert "resolved after 12 h at grade 0" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: OBS is missing"),
        (("{obs}",), "error: --out is missing"),
        (("{obs}", "--out", "{out}", "--scales", "astct2018:crs"), "error: unknown scale 'astct2018:crs'"),
        (
            ("{obs}", "--out", "{out}", "--engine", "gpu"),
            "error: --engine = 'gpu': expected embedded, spark or scalar",
        ),
        (("{obs}", "--out", "{out}", "--resolution-hours", "-3"), "error: --resolution-hours = '-3'"),
        (
            ("{obs}", "--out", "{out}", "--resolution-hours", "soon"),
            "error: --resolution-hours = 'soon': not a number",
        ),
        (("{obs}", "--out", "{out}", "--memory-limit", "1 ton"), "error: --memory-limit = '1 ton'"),
        (("{obs}", "--out", "{out}", "--format", "xlsx"), "error: --format = 'xlsx'"),
        (("{obs}", "--out", "{out}", "--threads", "two"), "error: --threads = 'two': not an integer"),
        (("/no/such.parquet", "--out", "{out}"), "error: /no/such.parquet: no such file"),
        (("{bad}", "--out", "{out}"), "error: bad.csv: missing columns ['value', 'unit']"),
        (("{txt}", "--out", "{out}"), "error: "),
        (("{semi}", "--out", "{out}"), "error: semi.csv: missing columns ['patient_id', 'time', 'code',"),
        (("{junk}", "--out", "{out}"), "error: junk.parquet: not a readable Parquet file"),
        (("{semi1}", "--out", "{out}"), "error: semi1.csv: missing columns ['patient_id', 'time', 'code',"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    cli: Cli, obs: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,time,code\nP1,2024-01-01,temperature\n")
    txt = tmp_path / "obs.txt"
    txt.write_text("hello")
    # what a French-locale spreadsheet writes as "CSV": ';' between fields, ',' in decimals
    semi = tmp_path / "semi.csv"
    semi.write_text("patient_id;time;code;value;unit\nP1;2024-01-01T10:00;temperature;38,6;Cel\n")
    semi1 = tmp_path / "semi1.csv"  # the same without a decimal comma: one column per line
    semi1.write_text("patient_id;time;code;value;unit\nP1;2024-01-01T10:00;temperature;38;Cel\n")
    fmt = {"obs": str(obs), "out": str(tmp_path / "o"), "bad": str(bad), "txt": str(txt)}
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    fmt |= {"semi": str(semi), "semi1": str(semi1), "junk": str(junk)}
    r = cli("timeline", *(a.format(**fmt) for a in args))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(message), r.stderr
    if "semi" in "".join(args):
        assert "separated by ';': write the file comma-separated, with a decimal point" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_ids_differing_only_by_spaces_are_reported(cli: Cli, tmp_path: Path) -> None:
    """A padded export splits one patient's record in two: the run says so (ids are kept exact)."""
    f = tmp_path / "split.csv"
    f.write_text(
        "patient_id,time,code,value,unit\n"
        "P2,2024-03-01T10:00Z,temperature,38.5,Cel\n"
        " P2 ,2024-03-01T14:00Z,temperature,38.9,Cel\n"
        "P3,2024-03-01T14:00Z,temperature,37,Cel\n"
    )
    out = tmp_path / "out"
    r = cli("timeline", str(f), "--out", str(out))
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    assert "differ only by surrounding spaces were graded as different patients: ' P2 ' / 'P2'" in flat
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split_patient_ids"] == [[" P2 ", "P2"]] and summary["patients"] == 3
