"""The DuckDB SQL peer of the cohort benchmark: ASTCT 2019 CRS + ICANS as one SQL pipeline.

What a data engineer would write instead of using the engine: DuckDB reads the Parquet file,
normalises the rows it needs (code and token aliases, canonical units, possible ranges), builds
the assessment grid, reconstructs the findings with window functions (look-back windows as
``RANGE`` frames over microsecond times, the most recent value with ``last_value(... IGNORE
NULLS)``), running oxygen devices and vasopressors with range joins, the fever-masking course
with gap-and-island window passes, and grades with the rule table as ``CASE`` expressions. It
writes one Parquet file of grades (patient, scale, time, grade, grade_lo, grade_hi, complete),
the headline's largest output; it does not write the daily maxima, episodes, patients,
crosstab and rejects the headline also writes, nor validate the rows it does not read.

The constants (thresholds, token -> grade maps, aliases, ranges, windows) are rendered into the
SQL from the project's rule table and vocabulary (``ruledata.load("astct2019")``,
``immunotox.vocabulary``), so the peer grades by the same rules without a second copy; the SQL
itself is independent of the engine. ``tests/test_bench_duckdb_peer.py`` proves its grades
equal to the engine's on a small simulated cohort.

Assumptions (conservative for the comparison: less work than the engine): quantities are in the
code's canonical unit (the synthetic cohort writes them so; other units are left out, not
converted); rows that fail parsing are dropped silently instead of being written as rejects.
"""

from __future__ import annotations

import sys
from typing import Any

from immunotox import ruledata
from immunotox.findings import vocabulary as finding_specs
from immunotox.timeline._engine import DEFAULT_RESOLUTION_H
from immunotox.vocabulary import vocabulary

US_PER_H = 3_600_000_000
CRS_CODES = ("temperature", "sbp", "vasopressor", "oxygen", "o2_flow", "death")
THERAPY_CODES = ("antipyretic", "tocilizumab", "corticosteroid", "anakinra")
ITEMS = ("ice_orientation", "ice_naming", "ice_commands", "ice_writing", "ice_attention")
ICANS_CODES = (
    "ice_score",
    *ITEMS,
    "capd_score",
    "consciousness",
    "seizure",
    "motor",
    "cerebral_edema",
    "raised_icp_signs",
    "death",
)
READ = tuple(dict.fromkeys((*CRS_CODES, *THERAPY_CODES, *ICANS_CODES, "age")))


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _case(expr: str, pairs: list[tuple[Any, Any]], default: Any = "NULL") -> str:
    whens = " ".join(f"WHEN {k} THEN {v}" for k, v in pairs)
    return f"CASE {expr} {whens} ELSE {default} END"


def _window_us(finding: str) -> int:
    return vocabulary().derivation(finding).window_us


def _token_grades(entries: dict[str, Any], code: str) -> list[tuple[int, int]]:
    tokens = vocabulary().code(code).tokens
    return [(i, int(entries[t]["grade"])) for i, t in enumerate(tokens)]


def _bands(bands: list[dict[str, Any]], expr: str) -> str:
    whens = " ".join(f"WHEN {expr} BETWEEN {b['min']} AND {b['max']} THEN {b['grade']}" for b in bands)
    return f"CASE {whens} END"


def statements(source: str, out: str) -> list[str]:
    """The SQL pipeline reading Parquet file ``source`` and writing the grades to ``out``."""
    voc = vocabulary()
    crs = ruledata.load("astct2019")["crs"]
    icans = ruledata.load("astct2019")["icans"]
    res_us = round(DEFAULT_RESOLUTION_H * US_PER_H)
    # lookup tables: code spellings, token spellings, ranges and tie rules
    alias_rows = ", ".join(f"({_q(k)}, {_q(v)})" for k, v in voc.aliases.items() if v in READ)
    token_rows = []
    for name in READ:
        spec = voc.code(name)
        for text, i in spec.token_map().items():
            token_rows.append(f"({_q(name)}, {_q(text)}, {i})")
    spec_rows = []
    for name in READ:
        spec = voc.code(name)
        lo, hi = spec.range if spec.range else (None, None)
        worst_max = spec.ties == "max" or spec.kind in ("token", "bool")
        spec_rows.append(
            f"({_q(name)}, {_q(spec.kind)}, {_q(spec.unit or '')}, "
            f"{'NULL' if lo is None else lo}, {'NULL' if hi is None else hi}, {str(worst_max).upper()})"
        )
    oxy = voc.code("oxygen")
    rank = [(oxy.tokens.index(t), r) for r, t in enumerate(oxy.intensity)]
    by_rank = [(r, oxy.tokens.index(t)) for r, t in enumerate(oxy.intensity)]
    drugs = voc.code("vasopressor").tokens
    counted_bits = sum(1 << i for i, d in enumerate(drugs) if d not in crs["not_counted_in_multiple"])
    nc = oxy.tokens.index(crs["flow_dependent_device"])
    hfnc_grade = int(crs["oxygen"]["high_flow_nasal_cannula"]["grade"])
    dev_grade = _case("device", _token_grades(crs["oxygen"], "oxygen"))
    hyp = crs["hypotension"]
    death_tokens = voc.code("death").tokens
    w = {k: _window_us(k) - 1 for k in ("temperature_c", "sbp_mmhg", "o2_flow_l_min")}
    wi = {
        k: _window_us(k) - 1
        for k in ("ice_score", "capd_score", "consciousness", "seizure", "motor", "cerebral_edema")
    }
    wi["raised_icp_signs"] = _window_us("raised_icp_signs") - 1
    w_items = _window_us("ice_items") - 1
    item_max = finding_specs()["ice_items"].fields
    item_names = [voc.code(c).item for c in ITEMS]
    g_loc = _token_grades(icans["consciousness"], "consciousness")
    loc_vals = [g for _, g in g_loc]
    g_seiz = _token_grades(icans["seizure"], "seizure")
    g_motor = _token_grades(icans["motor"], "motor")
    g_ed = _token_grades(icans["cerebral_edema"], "cerebral_edema")
    g_icp = int(icans["raised_icp_signs"]["grade"])
    ice_vals = [int(b["grade"]) for b in icans["ice_bands"]]
    capd_vals = [int(b["grade"]) for b in icans["capd_bands"]]
    unarousable = voc.code("consciousness").tokens.index("unarousable")
    inf = 1 << 62
    item_extra = " + ".join(
        f"CASE WHEN {c} IS NULL THEN {item_max[n][1]} ELSE 0 END"
        for c, n in zip(ITEMS, item_names, strict=True)
    )
    ed_min = min(g for _, g in g_ed)

    def order(expr: str, frame: str) -> str:
        return f"OVER (PARTITION BY pid ORDER BY t RANGE BETWEEN {frame} PRECEDING AND CURRENT ROW)"

    return [
        "SET threads = 2",
        "SET preserve_insertion_order = false",
        "CREATE TEMP TABLE code_alias(alias VARCHAR, code VARCHAR); "
        f"INSERT INTO code_alias VALUES {alias_rows}",
        f"CREATE TEMP TABLE token(code VARCHAR, text VARCHAR, idx INTEGER); "
        f"INSERT INTO token VALUES {', '.join(token_rows)}",
        "CREATE TEMP TABLE spec(code VARCHAR, kind VARCHAR, unit VARCHAR, lo DOUBLE, hi DOUBLE, "
        f"worst_max BOOLEAN); INSERT INTO spec VALUES {', '.join(spec_rows)}",
        # 1. the rows the two scales read, normalised (ties are resolved where they are read)
        f"""
CREATE TEMP TABLE obs AS
WITH raw AS (
  SELECT patient_id AS pid, epoch_us(time) AS t, a.code, s.kind,
         CASE WHEN s.kind IN ('token', 'bool') THEN tk.idx
              ELSE TRY_CAST(trim(r.value) AS DOUBLE) END AS v,
         epoch_us(end_time) AS e, s.lo, s.hi, s.unit AS canon, coalesce(trim(r.unit), '') AS unit
  FROM read_parquet({_q(source)}) r
  JOIN code_alias a ON a.alias = lower(trim(r.code))
  JOIN spec s ON s.code = a.code
  LEFT JOIN token tk ON tk.code = a.code AND tk.text = lower(trim(r.value))
)
SELECT pid, t, code, e, v
FROM raw
WHERE v IS NOT NULL AND pid IS NOT NULL AND t IS NOT NULL
  AND (kind NOT IN ('quantity') OR (unit = canon AND v BETWEEN lo AND hi))
  AND (kind <> 'integer' OR (v = round(v) AND v BETWEEN lo AND hi))
""",
        # 2. interval rows (oxygen devices, vasopressors): an open row runs until the next row of
        #    the same code (and drug) at a later time, else until the end of the record
        f"""
CREATE TEMP TABLE intervals AS
WITH o AS (SELECT pid, t, code, v, e FROM obs WHERE code IN ('oxygen', 'vasopressor')),
     nxt AS (
  SELECT pid, code, g, t, lead(t) OVER (PARTITION BY pid, code, g ORDER BY t) AS next_t
  FROM (SELECT DISTINCT pid, code, CASE WHEN code = 'vasopressor' THEN v ELSE -1 END AS g, t FROM o)
)
SELECT o.pid, o.code, o.v::INTEGER AS tok, o.t AS s, coalesce(o.e, nxt.next_t, {inf}) AS e
FROM o JOIN nxt ON nxt.pid = o.pid AND nxt.code = o.code AND nxt.t = o.t
  AND nxt.g = CASE WHEN o.code = 'vasopressor' THEN o.v ELSE -1 END
""",
        "CREATE TEMP TABLE age AS SELECT pid, arg_max(v, t) AS age FROM "
        "(SELECT pid, t, max(v) AS v FROM obs WHERE code = 'age' GROUP BY pid, t) GROUP BY pid",
        # 3. CRS grid: rows of the codes CRS reads (and therapy rows), ends of interval rows;
        #    windowed temperature maximum and SBP minimum, death since, therapy at t
        f"""
CREATE TEMP TABLE crs_pts AS
WITH rows AS (
  SELECT pid, t,
         max(v) FILTER (WHERE code = 'temperature') AS temp,
         min(v) FILTER (WHERE code = 'sbp') AS sbp,
         bool_or(code = 'death' AND v = {death_tokens.index("crs")}) AS death_row,
         bool_or(code IN ({", ".join(map(_q, THERAPY_CODES))})) AS therapy
  FROM obs WHERE code IN ({", ".join(map(_q, (*CRS_CODES, *THERAPY_CODES)))})
  GROUP BY pid, t
  UNION ALL
  SELECT DISTINCT pid, e, NULL, NULL, false, false FROM obs
  WHERE code IN ('oxygen', 'vasopressor') AND e IS NOT NULL
), pts AS (
  SELECT pid, t, max(temp) AS temp, min(sbp) AS sbp, bool_or(death_row) AS death_row,
         bool_or(therapy) AS therapy
  FROM rows GROUP BY pid, t
)
SELECT pid, t, therapy,
       max(temp) {order("t", str(w["temperature_c"]))} AS temp,
       min(sbp) {order("t", str(w["sbp_mmhg"]))} AS sbp,
       bool_or(death_row) OVER (PARTITION BY pid ORDER BY t ROWS UNBOUNDED PRECEDING) AS death
FROM pts
""",
        # 4. devices and vasopressors running at each point (range joins)
        f"""
CREATE TEMP TABLE crs_run AS
SELECT p.pid, p.t,
       max(CASE WHEN i.code = 'oxygen' THEN ({_case("i.tok", rank)}::BIGINT << 51) | i.s END) AS dev_packed,
       bit_or(CASE WHEN i.code = 'vasopressor' THEN 1::BIGINT << i.tok ELSE 0 END) AS vaso
FROM crs_pts p JOIN intervals i ON i.pid = p.pid AND i.s <= p.t AND p.t < i.e
GROUP BY p.pid, p.t
""",
        """
CREATE TEMP TABLE flow AS
SELECT pid, t, max(v) AS v FROM obs WHERE code = 'o2_flow' GROUP BY pid, t
""",
        f"""
CREATE TEMP TABLE crs_dom AS
WITH base AS (
  SELECT p.*, coalesce(r.vaso, 0) AS vaso,
         coalesce(r.dev_packed >> 51, 0) AS dev_rank,
         CASE WHEN coalesce(r.dev_packed >> 51, 0) > 0 THEN r.dev_packed & ((1::BIGINT << 51) - 1) END
           AS dev_start,
         a.age
  FROM crs_pts p LEFT JOIN crs_run r USING (pid, t) LEFT JOIN age a USING (pid)
), dev AS (
  SELECT base.*, {_case("dev_rank", by_rank)} AS device FROM base
), withflow AS (
  SELECT d.*, CASE WHEN d.dev_rank > 0 AND f.t > d.t - {w["o2_flow_l_min"] + 1} AND f.t >= d.dev_start
                   THEN f.v END AS flow
  FROM dev d ASOF LEFT JOIN flow f ON f.pid = d.pid AND f.t <= d.t
)
SELECT pid, t, therapy, death, device, flow,
       temp IS NOT NULL AS fever_known,
       coalesce(temp >= {crs["fever_min_c"]}, false) AS fever,
       CASE WHEN vaso <> 0 THEN
              CASE WHEN bit_count(vaso & {counted_bits}) >= 2 THEN {hyp["multiple_vasopressors"]["grade"]}
                   ELSE {hyp["one_vasopressor"]["grade"]} END
            WHEN sbp < {crs["sbp_below_mmhg"]} AND age >= {crs["adult_min_age_years"]}
              THEN {hyp["no_vasopressor"]["grade"]}
            ELSE 0 END AS hypo_lo,
       vaso <> 0 OR (sbp IS NOT NULL AND age >= {crs["adult_min_age_years"]}) AS hypo_known,
       CASE WHEN device = {nc} AND flow > {crs["low_flow_max_l_min"]} THEN {hfnc_grade}
            ELSE {dev_grade} END AS hypox_lo,
       device <> {nc} OR flow IS NOT NULL AS hypox_known
FROM withflow
""",
        # 5. fever masking: CRS courses (episodes of activity under masking, resolution N h),
        #    masked from the first therapy at or after the course's first fever to its end
        f"""
CREATE TEMP TABLE crs_mask AS
WITH a AS (
  SELECT *, fever OR hypo_lo >= 1 OR hypox_lo >= 1 AS pos FROM crs_dom
), b AS (
  SELECT *,
    lead(pos) OVER w AS next_pos, lead(t) OVER w AS next_t,
    first_value(CASE WHEN pos THEN t END IGNORE NULLS)
      OVER (PARTITION BY pid ORDER BY t ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_pos_t,
    max(t) OVER (PARTITION BY pid) AS last_t
  FROM a WINDOW w AS (PARTITION BY pid ORDER BY t)
), c AS (
  SELECT *, pos AND NOT next_pos
            AND CASE WHEN next_pos_t IS NULL THEN last_t - next_t >= {res_us}
                     ELSE next_pos_t - next_t >= {res_us} END AS breaks
  FROM b
), d AS (
  SELECT *,
    last_value(CASE WHEN pos THEN breaks END IGNORE NULLS)
      OVER (PARTITION BY pid ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_break,
    count(*) FILTER (WHERE pos) OVER (PARTITION BY pid ORDER BY t ROWS UNBOUNDED PRECEDING) AS n_pos_upto,
    last_value(CASE WHEN pos THEN breaks END IGNORE NULLS)
      OVER (PARTITION BY pid ORDER BY t ROWS UNBOUNDED PRECEDING) AS last_pos_break
  FROM c
), e AS (
  SELECT *, sum(CASE WHEN pos AND (prev_break IS NULL OR prev_break) THEN 1 ELSE 0 END)
              OVER (PARTITION BY pid ORDER BY t ROWS UNBOUNDED PRECEDING) AS ep,
         n_pos_upto > 0 AND (pos OR NOT last_pos_break) AS inside
  FROM d
), f AS (
  SELECT *, min(CASE WHEN inside AND fever THEN t END) OVER (PARTITION BY pid, ep) AS first_fever FROM e
), g AS (
  SELECT *, min(CASE WHEN inside AND therapy AND t >= first_fever THEN t END)
              OVER (PARTITION BY pid, ep) AS first_therapy FROM f
)
SELECT pid, t, inside AND t >= first_therapy AS masked FROM g
""",
        # 6. CRS grade (ASTCT 2019: fever required unless masked; most severe domain; death 5)
        f"""
CREATE TEMP TABLE crs_grades AS
SELECT d.pid, 'astct2019:crs' AS scale, d.t,
  CASE WHEN d.death THEN 5 WHEN d.fever OR coalesce(m.masked, false)
       THEN greatest(d.fever::INTEGER, d.hypo_lo, d.hypox_lo) ELSE 0 END AS lo,
  CASE WHEN d.death THEN 5
       WHEN (NOT d.fever_known OR d.fever) OR coalesce(m.masked, false)
       THEN greatest((NOT d.fever_known OR d.fever)::INTEGER,
                     CASE WHEN d.hypo_known THEN d.hypo_lo ELSE {hyp["no_vasopressor"]["grade"]} END,
                     CASE WHEN d.device = {nc} AND d.flow IS NULL THEN {crs["flow_dependent_high_grade"]}
                          ELSE d.hypox_lo END)
       ELSE 0 END AS hi,
  d.fever_known AND d.hypo_known AND d.hypox_known AS complete,
  true AS assessable
FROM crs_dom d
LEFT JOIN crs_mask m USING (pid, t)
""",
        # 7. ICANS: every row of the codes ICANS reads is a point; the most recent value of each
        #    code in its window; the rule table as CASE expressions
        f"""
CREATE TEMP TABLE icans_pts AS
WITH pts AS (
  SELECT pid, t,
    min(v) FILTER (WHERE code = 'ice_score') AS ice,
    {", ".join(f"min(v) FILTER (WHERE code = {_q(c)}) AS {c}" for c in ITEMS)},
    max(v) FILTER (WHERE code = 'capd_score') AS capd,
    max(v) FILTER (WHERE code = 'consciousness') AS loc,
    max(v) FILTER (WHERE code = 'seizure') AS seizure,
    max(v) FILTER (WHERE code = 'motor') AS motor,
    max(v) FILTER (WHERE code = 'cerebral_edema') AS edema,
    max(v) FILTER (WHERE code = 'raised_icp_signs') AS icp,
    bool_or(code = 'death' AND v = {death_tokens.index("icans")}) AS death_row
  FROM obs WHERE code IN ({", ".join(map(_q, ICANS_CODES))})
  GROUP BY pid, t
)
SELECT pid, t,
  last_value(ice IGNORE NULLS) {order("t", str(wi["ice_score"]))} AS ice,
  {", ".join(f"last_value({c} IGNORE NULLS) {order('t', str(w_items))} AS {c}" for c in ITEMS)},
  last_value(capd IGNORE NULLS) {order("t", str(wi["capd_score"]))} AS capd,
  last_value(loc IGNORE NULLS) {order("t", str(wi["consciousness"]))} AS loc,
  last_value(seizure IGNORE NULLS) {order("t", str(wi["seizure"]))} AS seizure,
  last_value(motor IGNORE NULLS) {order("t", str(wi["motor"]))} AS motor,
  last_value(edema IGNORE NULLS) {order("t", str(wi["cerebral_edema"]))} AS edema,
  last_value(icp IGNORE NULLS) {order("t", str(wi["raised_icp_signs"]))} AS icp,
  bool_or(death_row) OVER (PARTITION BY pid ORDER BY t ROWS UNBOUNDED PRECEDING) AS death
FROM pts
""",
        f"""
CREATE TEMP TABLE icans_grades AS
WITH a AS (
  SELECT p.*, g.age,
    ice IS NOT NULL AS ice_known,
    {" + ".join(f"coalesce({c}, 0)" for c in ITEMS)} AS item_base,
    {item_extra} AS item_extra,
    {" OR ".join(f"{c} IS NOT NULL" for c in ITEMS)} AS any_item
  FROM icans_pts p LEFT JOIN age g USING (pid)
), b AS (
  SELECT *, ice_known OR any_item AS has_ice,
    CASE WHEN ice_known THEN ice ELSE item_base END AS s_lo,
    CASE WHEN ice_known THEN ice ELSE least(item_base + item_extra, 10) END AS s_hi,
    coalesce(loc = {unarousable}, false) AS unarousable
  FROM a
), c AS (
  SELECT *,
    CASE WHEN age IS NOT NULL THEN age < {icans["pediatric_below_age_years"]}
         ELSE capd IS NOT NULL AND NOT has_ice END AS use_capd,
    age IS NULL AND capd IS NULL AND NOT has_ice AS tool_unknown
  FROM b
), d AS (
  SELECT *,
    CASE WHEN unarousable THEN 0 WHEN tool_unknown THEN {min(ice_vals)}
         WHEN use_capd THEN coalesce({_bands(icans["capd_bands"], "capd")}, {min(capd_vals)})
         WHEN has_ice THEN {_bands(icans["ice_bands"], "s_hi")} ELSE {min(ice_vals)} END AS enc_lo,
    CASE WHEN unarousable THEN 0 WHEN tool_unknown THEN {max(ice_vals)}
         WHEN use_capd THEN coalesce({_bands(icans["capd_bands"], "capd")}, {max(capd_vals)})
         WHEN has_ice THEN {_bands(icans["ice_bands"], "s_lo")} ELSE {max(ice_vals)} END AS enc_hi,
    coalesce({_case("loc", g_loc)}, {min(loc_vals)}) AS loc_lo,
    coalesce({_case("loc", g_loc)}, {max(loc_vals)}) AS loc_hi,
    coalesce({_case("seizure", g_seiz)}, {min(g for _, g in g_seiz)}) AS seiz_lo,
    coalesce({_case("seizure", g_seiz)}, {max(g for _, g in g_seiz)}) AS seiz_hi,
    coalesce({_case("motor", g_motor)}, {min(g for _, g in g_motor)}) AS motor_lo,
    coalesce({_case("motor", g_motor)}, {max(g for _, g in g_motor)}) AS motor_hi,
    {_case("edema", g_ed)} AS ge,
    coalesce(icp = 1, false) AS icp_true
  FROM c
), e AS (
  SELECT *,
    CASE WHEN icp_true THEN {g_icp} WHEN edema IS NOT NULL THEN ge ELSE {ed_min} END AS ed_lo,
    CASE WHEN icp_true THEN {g_icp}
         WHEN edema IS NOT NULL THEN CASE WHEN icp IS NULL AND ge < {g_icp} THEN {g_icp} ELSE ge END
         ELSE {max(max(g for _, g in g_ed), g_icp)} END AS ed_hi
  FROM d
), f AS (
  SELECT *,
    CASE WHEN death THEN 5 ELSE greatest(loc_lo, enc_lo, seiz_lo, motor_lo, ed_lo) END AS lo,
    CASE WHEN death THEN 5 ELSE greatest(loc_hi, enc_hi, seiz_hi, motor_hi, ed_hi) END AS hi,
    (loc_lo = loc_hi) AND (enc_lo = enc_hi) AND (seiz_lo = seiz_hi) AND (motor_lo = motor_hi)
      AND (ed_lo = ed_hi) AS known_all,
    (loc_lo = loc_hi) OR (enc_lo = enc_hi) OR (seiz_lo = seiz_hi) OR (motor_lo = motor_hi)
      OR (ed_lo = ed_hi) OR (edema IS NOT NULL AND ge > 0) OR icp_true OR death AS known_any
  FROM e
)
SELECT pid, 'astct2019:icans' AS scale, t, lo, hi, known_all AS complete, known_any OR lo = hi AS assessable
FROM f
""",
        # 8. one Parquet file of grades
        f"""
COPY (
  SELECT pid AS patient_id, scale, make_timestamp(t) AS time,
         CASE WHEN assessable THEN lo END::TINYINT AS grade, lo::TINYINT AS grade_lo,
         hi::TINYINT AS grade_hi, complete
  FROM (SELECT * FROM crs_grades UNION ALL SELECT * FROM icans_grades)
) TO {_q(out)} (FORMAT parquet)
""",
    ]


def run(source: str, out: str, con: Any = None) -> Any:
    """Run the pipeline on ``source`` (a Parquet file), writing ``out``; returns the connection."""
    import duckdb

    con = con or duckdb.connect()
    for sql in statements(source, out):
        con.execute(sql)
    return con


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
