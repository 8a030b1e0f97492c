"""The API and the timeline reader accept and reject exactly the same rows (issue 16).

Both read the one observation vocabulary (``data/observations.toml``): the service checks a row
with :func:`immunotox.service.codes.normalize` (a 422 naming the field), the timeline reader with
the vectorised :func:`immunotox.timeline._read.normalize` (a reject naming the column and the
reason). The rows are generated across every contract code: canonical names in any case, LOINC
aliases and unknown codes; each number code's range edges (in the canonical unit and converted
into other units), just inside and just outside them; wrong, unknown and missing units; tokens,
aliases, booleans and free tokens, well and badly written. An accepted row must give the same
canonical value on both roads; a refused one the same field and the same reason.

``symptom`` is left out: it is the service's own self-report code, outside the observation
contract (``contract = false``), which the timeline engine does not read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immunotox import units
from immunotox.errors import FindingError
from immunotox.service import codes
from immunotox.timeline._read import normalize
from immunotox.vocabulary import CodeSpec, vocabulary

from .conftest import Service

CONTRACT: tuple[CodeSpec, ...] = vocabulary().codes
TIME = "2025-03-10T11:00:00+00:00"
# other units a client may send for each canonical unit (convertible), and one of another kind
OTHER_UNITS: dict[str, tuple[str, ...]] = {
    "Cel": ("[degF]", "K"),
    "mm[Hg]": ("kPa",),
    "/min": ("/s", "/h"),
    "%": ("1",),
    "L/min": ("mL/min",),
    "10*9/L": ("/uL", "10*3/uL", "/mm3"),
    "g/dL": ("g/L", "mmol/L"),
    "mg/L": ("mg/dL",),
    "ug/L": ("ng/mL",),
    "U/L": ("[IU]/L", "U/mL"),
    "mg/dL": ("umol/L", "mg/L", "g/L"),
    "pg/mL": ("ng/L",),
    "a": ("mo", "wk"),
    "kg": ("g", "[lb_av]"),
    "m[IU]/L": ("u[IU]/mL", "mIU/L"),
    "pmol/L": ("ng/dL",),
    "nmol/L": ("ug/dL",),
    "ng/L": ("pg/mL", "ug/L"),
}
WRONG_UNITS = ("kg", "mL", "zorkmid", "mg/dL", "", "  ", "1", "{score}")
BAD_NUMBERS = ("38,5", "abc", "", "nan", "inf", "-inf", "1e400", "1.2.3", "true")
UNKNOWN_CODES = ("temprature", "xyz_lab", "12345-6", "bp systolic")
_POSSIBLE = re.compile(r"outside the (physically )?possible range")


def api(code: str, value: Any, unit: str | None) -> tuple[str, Any]:
    """("ok", canonical value) or (field, reason) as the service answers one row."""
    try:
        spec = codes.resolve(code)
        n = codes.normalize(spec, value, unit)
    except FindingError as exc:
        reason = {"code": "unknown_code", "unit": "bad_unit"}.get(exc.field)
        if reason is None:
            reason = "impossible_value" if _POSSIBLE.search(exc.problem) else "bad_value"
        return exc.field, reason
    if spec.numeric:
        return "ok", n.value_num
    return "ok", n.value if spec.kind != "open" else None


def timeline(rows: list[tuple[str, str, str | None]]) -> list[tuple[str, Any]]:
    """The same answer per row from the timeline reader (one patient per row)."""
    pids = [f"P{i:05d}" for i in range(len(rows))]
    table = pa.table(
        {
            "patient_id": pids,
            "time": [TIME] * len(rows),
            "code": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "unit": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    res = normalize(table, file="agreement.csv")
    out: list[tuple[str, Any]] = [("ok", None)] * len(rows)
    for rej in res.rejects.to_pylist():
        out[rej["row"] - 1] = (rej["column"], rej["reason"])
    voc = vocabulary()
    for pid, code, num in zip(res.obs.pid.tolist(), res.obs.code.tolist(), res.obs.num.tolist(), strict=True):
        i = int(res.obs.patient_ids[pid][1:])
        spec = voc.codes[code]
        out[i] = ("ok", num if spec.numeric else spec.tokens[int(num)] if spec.kind != "open" else None)
    return out


def _fmt(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x)) if abs(x) < 1e15 else repr(x)


def _edge_unit(spec: CodeSpec, unit: str | None) -> str:
    """``unit`` when the edges can be written in it, else the canonical unit."""
    if spec.kind != "quantity" or unit is None or not unit.strip():
        return spec.unit
    try:
        units.convert(spec.name, 1.0, unit, spec.unit, spec.molar_mass)
    except FindingError:
        return spec.unit
    return unit.strip()


def edge_values(spec: CodeSpec, unit: str) -> list[str]:
    """The range edges of ``spec`` written in ``unit``, and values just inside and outside."""
    assert spec.range is not None
    lo, hi = spec.range
    if unit != spec.unit:
        lo, hi = (units.convert(spec.name, x, spec.unit, unit, spec.molar_mass) for x in (lo, hi))
        lo, hi = min(lo, hi), max(lo, hi)
    span = (hi - lo) or 1.0
    step = 1.0 if spec.kind == "integer" else span * 1e-6
    xs = [lo, hi, lo - step, hi + step, lo + step, hi - step, (lo + hi) / 2, lo - span, hi + span]
    if spec.kind == "integer":
        xs += [lo + 0.5, hi - 0.5]
    return [_fmt(x) for x in xs]


def token_values(spec: CodeSpec) -> list[str]:
    words = [*spec.tokens, *spec.aliases]
    shown = [w.upper() for w in words[:3]] + [f"  {w} " for w in words[:2]]
    if spec.kind == "open":
        words = ["Axi-Cel", "crystalloid", "cd19.car-t_2", "123", "x" * 64]
        shown = ["x" * 65, "a b", "-lead", ".x", "é"]
    return [*words, *shown, "not_a_value", "", "0", "1", "2"]


def units_for(spec: CodeSpec) -> list[str | None]:
    if spec.kind == "quantity":
        return [spec.unit, f" {spec.unit} ", *OTHER_UNITS.get(spec.unit, ()), None, *WRONG_UNITS]
    return [None, "", "1", "{score}", " 1 ", "mg", "%", "zorkmid"]


def edge_rows() -> list[tuple[str, str, str | None]]:
    """Every code's edges, units, tokens and spellings, enumerated."""
    rows: list[tuple[str, str, str | None]] = []
    for spec in CONTRACT:
        spellings = [spec.name, spec.name.upper(), f" {spec.name} ", *spec.loinc]
        if spec.numeric:
            for unit in units_for(spec):
                for value in [*edge_values(spec, _edge_unit(spec, unit)), *BAD_NUMBERS[:3]]:
                    rows.append((spec.name, value, unit))
            mid = _fmt(sum(spec.range or (0.0, 0.0)) / 2)
            rows += [(s, mid, spec.unit or None) for s in spellings]
        else:
            for value in token_values(spec):
                rows.append((spec.name, value, None))
            for unit in units_for(spec):
                rows.append((spec.name, (spec.tokens or ("free",))[0], unit))
            rows += [(s, (spec.tokens or ("free",))[0], None) for s in spellings]
    rows += [(c, "1", None) for c in UNKNOWN_CODES]
    return rows


# ---------------------------------------------------------------------------------- strategies
@st.composite
def a_row(draw: st.DrawFn) -> tuple[str, str, str | None]:
    if draw(st.integers(0, 40)) == 0:
        return draw(st.sampled_from(UNKNOWN_CODES)), "1", None
    spec = draw(st.sampled_from(CONTRACT))
    code = draw(st.sampled_from([spec.name, spec.name.upper(), f" {spec.name}", *spec.loinc]))
    unit = draw(st.sampled_from(units_for(spec)))
    if spec.numeric:
        edges = edge_values(spec, _edge_unit(spec, unit))
        value = draw(
            st.one_of(
                st.sampled_from(edges),
                st.sampled_from(BAD_NUMBERS),
                st.floats(-1e6, 1e7, allow_nan=False).map(_fmt),
                st.integers(-5, 400).map(str),
            )
        )
    else:
        value = draw(st.one_of(st.sampled_from(token_values(spec)), st.text(max_size=6)))
    return code, value, unit


def _assert_agree(rows: list[tuple[str, str, str | None]]) -> None:
    file_side = timeline(rows)
    for row, got in zip(rows, file_side, strict=True):
        want = api(*row)
        if want[0] == "ok" and isinstance(want[1], float):
            assert got[0] == "ok" and got[1] == want[1], (row, want, got)
        else:
            assert got == want, (row, want, got)


def test_every_code_edge_unit_token_and_alias_is_answered_alike() -> None:
    rows = edge_rows()
    assert len(rows) > 1500
    _assert_agree(rows)
    answers = {api(*r)[1] if api(*r)[0] != "ok" else "ok" for r in rows}
    assert answers == {"ok", "unknown_code", "bad_value", "bad_unit", "impossible_value"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(a_row(), min_size=1, max_size=60))
def test_generated_rows_are_answered_alike(rows: list[tuple[str, str, str | None]]) -> None:
    _assert_agree(rows)


def test_the_issues_rows_are_answered_alike() -> None:
    """Issue 16: heart rate 320 and 5/min, respiratory rate 130/min, oral temperature 8331-1 were
    refused by one road and accepted by the other."""
    rows = [
        ("heart_rate", "320", "/min"),
        ("heart_rate", "5", "/min"),
        ("resp_rate", "130", "/min"),
        ("8331-1", "38.4", "Cel"),
        ("heart_rate", "351", "/min"),
        ("creatinine", "100", "umol/L"),
        ("creatinine", "4000", "umol/L"),
        ("alt", "250", None),
        ("alt", "250", "mg"),
        ("alt", "250", "furlong"),
    ]
    assert [api(*r) for r in rows] == [
        ("ok", 320.0),
        ("ok", 5.0),
        ("ok", 130.0),
        ("ok", 38.4),
        ("value", "impossible_value"),
        ("ok", 1.1312),  # 100 umol/L x 113.12 g/mol = 1.1312 mg/dL
        ("value", "impossible_value"),
        ("unit", "bad_unit"),
        ("unit", "bad_unit"),
        ("unit", "bad_unit"),
    ]
    _assert_agree(rows)


def test_the_api_refuses_with_a_422_exactly_the_rows_the_file_rejects(sqlite_svc: Service) -> None:
    """Through HTTP: a batch of every edge row is refused with one error per bad row, naming the
    field of each row the file rejects, with its column; the good rows are then all stored."""
    rows = edge_rows()
    file_side = timeline(rows)
    t = (sqlite_svc.clock.now() - dt.timedelta(hours=1)).isoformat()
    good: list[dict[str, Any]] = []
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        body = [{"patient_id": "P-A1", "code": c, "value": v, "unit": u, "time": t} for c, v, u in chunk]
        r = sqlite_svc.post("nurse_a", "/api/v1/observations/batch", {"observations": body})
        expected = [
            f"observations.{i}.{got[0]}"
            for i, got in enumerate(file_side[start : start + 1000])
            if got[0] != "ok"
        ]
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == expected
        good += [b for b, got in zip(body, file_side[start : start + 1000], strict=True) if got[0] == "ok"]
    for start in range(0, len(good), 1000):
        ok = sqlite_svc.post(
            "nurse_a", "/api/v1/observations/batch", {"observations": good[start : start + 1000]}
        )
        assert ok.status_code == 201, ok.json()
    assert sqlite_svc.sql("SELECT count(*) FROM clinical_event") == [(len(good),)]
