"""Legacy CRS grading scales, for regrading: Lee 2014, Penn (Porter 2018), MSKCC, CARTOX.

Tables and interpretation notes live in ``data/scales/legacy_crs.toml``; this module holds the
logic, one small function per kind of criterion:

* **symptoms** — grade 1: CRS symptoms or fever (Lee, Penn, MSKCC), fever only (CARTOX);
* **hypotension** — by vasopressor count and dose (Lee, CARTOX), by dose only (Penn) or by
  vasopressor duration (MSKCC), plus refractory / life-threatening hypotension;
* **hypoxia** — by FiO2 below / at least 40 % and ventilator support (Lee, MSKCC, CARTOX) or by
  device (Penn: any supplemental oxygen = 3, mechanical ventilation = 4);
* **organ toxicity** and **transaminitis** — CTCAE grades mapped to the scale's grades;
* Penn only: coagulopathy needing blood products, hospitalization for CRS, other
  life-threatening complications.

Every scale takes the most severe criterion met (no fever gate; CARTOX's fever is only its
grade-1 criterion). An input that is missing but could raise the grade leaves the grade as a
lower bound; an input that cannot raise it above what is already established is not needed.
All four scales accept the same legacy findings, so one record can be regraded with each; an
input that is not a criterion of a scale is listed in the reasons as not used.

References
----------
Lee DW, Gardner R, Porter DL, et al. Current concepts in the diagnosis and management of cytokine
release syndrome. Blood 2014;124(2):188-195. doi:10.1182/blood-2014-05-552729

Porter D, Frey N, Wood PA, Weng Y, Grupp SA. Grading of cytokine release syndrome associated with
the CAR T cell therapy tisagenlecleucel. J Hematol Oncol 2018;11:35. doi:10.1186/s13045-018-0571-y

Park JH, Rivière I, Gonen M, et al. Long-term follow-up of CD19 CAR therapy in acute lymphoblastic
leukemia. N Engl J Med 2018;378:449-459. doi:10.1056/NEJMoa1709919

Neelapu SS, Tummala S, Kebriaei P, et al. Chimeric antigen receptor T-cell therapy — assessment and
management of toxicities. Nat Rev Clin Oncol 2018;15(1):47-62. doi:10.1038/nrclinonc.2017.148
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FindingError, RuleSpecError
from ..findings import pick
from ..messages import Catalogue, Msg
from ..messages import name as as_given
from ..result import RuleHit
from ._base import Domain, Scale, and_list, known, unknown
from .legacy_crs_spec import FLAGS, Entry, LegacyScale, LegacyTable, table

_T: LegacyTable = table()
_C = _T.common
T = Catalogue("scales/legacy_crs")

# Every legacy scale accepts the union of the legacy CRS findings (regrading one record).
LEGACY_INPUTS = (
    "temperature_c",
    "crs_symptoms",
    "hypotension",
    "hypotension_fluid_responsive",
    "hypotension_refractory",
    "vasopressors",
    "vasopressor_high_dose",
    "vasopressor_hours",
    "oxygen",
    "o2_flow_l_min",
    "fio2_pct",
    "organ_toxicity_grade",
    "creatinine_grade",
    "transaminitis_grade",
    "coagulopathy_requiring_products",
    "hospitalized_for_crs",
    "life_threatening",
    "attribution_other_cause",
    "death_due_to_crs",
)

# the yes/no findings of the flag criteria (legacy_crs_spec.FLAGS), in the same order
_FLAG_FINDINGS = ("coagulopathy_requiring_products", "hospitalized_for_crs", "life_threatening")

_GRADED = (
    "symptoms",
    "hypotension",
    "hypoxia",
    "organ",
    "transaminitis",
    "coagulopathy",
    "hospitalization",
    "life_threatening",
)


def _check(f: Mapping[str, Any]) -> None:
    """Refuse findings that contradict each other (shared by the four legacy scales)."""
    device, flow, fio2 = f.get("oxygen"), f.get("o2_flow_l_min"), f.get("fio2_pct")
    room_air = _C.room_air_fio2_pct
    if device == "none" and flow is not None and flow > 0:
        raise FindingError("o2_flow_l_min", flow, T.e("flow_without_device"), T.e("give_device"))
    if device == "none" and fio2 is not None and fio2 > room_air:
        raise FindingError("fio2_pct", fio2, T.e("fio2_without_device"), T.e("give_device"))
    if device in _C.oxygen_delivering_devices and fio2 is not None and fio2 <= room_air:
        raise FindingError("fio2_pct", fio2, T.e("fio2_room_air_device", device=repr(device)))
    pressors = f.get("vasopressors")
    if pressors == []:
        for key in ("vasopressor_high_dose", "hypotension_refractory"):
            if f.get(key) is True:
                raise FindingError(key, True, T.e("given_without_pressor"))
        if (f.get("vasopressor_hours") or 0) > 0:
            raise FindingError("vasopressor_hours", f["vasopressor_hours"], T.e("given_without_pressor"))
    if f.get("hypotension_refractory") is True and f.get("vasopressor_high_dose") is False:
        raise FindingError(
            "hypotension_refractory",
            True,
            T.e("refractory_not_high_dose"),
            T.e("refractory_implies_high_dose"),
        )
    if f.get("hypotension") is False:
        if pressors:
            raise FindingError("vasopressors", pressors, T.e("given_without_hypotension"))
        for key in ("hypotension_refractory", "hypotension_fluid_responsive", "vasopressor_high_dose"):
            if f.get(key) is True:
                raise FindingError(key, True, T.e("given_without_hypotension"))
    organ, creat = f.get("organ_toxicity_grade"), f.get("creatinine_grade")
    if organ is not None and creat is not None and organ < creat:
        raise FindingError(
            "organ_toxicity_grade", organ, T.e("organ_below_creatinine", creat=creat), T.e("organ_is_worst")
        )


def _grades(dom: Domain) -> list[int]:
    """The possible grades of a graded domain (its values are ints)."""
    return sorted([x for x in dom.possible if isinstance(x, int)])


def _with(dom: Domain, *, extra: tuple[int, ...], missing: str, reason: Msg | None = None) -> Domain:
    """``dom`` with ``extra`` possible values because ``missing`` is absent."""
    out = Domain(
        dom.name, tuple(sorted({*_grades(dom), *extra})), list(dom.hits), list(dom.missing), list(dom.reasons)
    )
    if missing not in out.missing:
        out.missing.append(missing)
    if reason:
        out.reasons.append(reason)
    return out


def _prune(doms: list[Domain]) -> list[Domain]:
    """Mark unknown domains that cannot raise the grade above the established one as not needed.

    Valid because every legacy scale takes the most severe criterion (death aside).
    """
    death = next(d for d in doms if d.name == "death")
    graded = [(d, _grades(d)) for d in doms if d.name in _GRADED]  # each domain's grades, once
    established = (gs[0] for d, gs in graded if d.known)
    floor = 5 if death.possible == (True,) else max(established, default=0)
    if floor <= 0:
        return doms  # nothing established: no unknown domain can be set aside
    pruned: dict[int, Domain] = {}  # id of an unknown domain -> the same, marked as not needed
    for d, gs in graded:
        if not d.known and gs[-1] <= floor:
            reason = T.m("not_needed", keys=list(d.missing), floor=floor)
            pruned[id(d)] = Domain(d.name, (gs[0],), d.hits, [], [*d.reasons, reason], assumed=True)
    return [pruned.get(id(d), d) for d in doms] if pruned else doms


def name_of(items: list[str]) -> Msg:
    """Identifiers (vasopressor agents) shown as given, joined with ", "."""
    return as_given(", ".join(items))


class LegacyCrs(Scale):
    """One legacy CRS scale, configured by its table ``key`` in ``legacy_crs.toml``."""

    key: str
    family = "crs"
    grades = (0, 1, 2, 3, 4, 5)
    findings = pick(*LEGACY_INPUTS)

    def __init__(self) -> None:
        self.t: LegacyScale = _T.scale(self.key)
        self.title = self.t.title
        self.version = self.t.version
        self.source_keys = (self.t.source,)
        self.notes = tuple(T(f"{self.key}.notes.{i}") for i in range(len(self.t.notes)))
        unknown_reads = sorted(set(self.t.reads) - set(LEGACY_INPUTS))
        if unknown_reads:
            raise RuleSpecError(f"legacy_crs.{self.key}.reads: unknown findings {unknown_reads}")

    texts = T

    def title_msg(self) -> Msg:
        return T(f"{self.key}.title")

    def domain_msg(self, name: str) -> Msg:
        return T(f"common.domains.{name}")

    def _hit(
        self, domain: str, key: str, entry: Entry, detail: Msg | None = None, *, path: str = ""
    ) -> RuleHit:
        """The rule ``key`` of ``domain`` (its table entry, at ``path`` when not ``domain.key``)."""
        text = T(f"{self.key}.{path or f'{domain}.{key}'}")
        msg = text if detail is None else T.m("with_detail", text=text, detail=detail)
        return RuleHit.of(f"{self.id}/{domain}/{key}", domain, entry.grade, msg)

    def _entry(self, domain: str, key: str) -> Entry:
        return self.t.row(domain, key)

    def check(self, f: Mapping[str, Any]) -> None:
        _check(f)
        temp = f.get("temperature_c")
        if (
            "crs_symptoms" in self.t.reads
            and f.get("crs_symptoms") is False
            and temp is not None
            and temp >= _C.fever_min_c
            and "fever" not in f.get("attribution_other_cause", [])
        ):
            raise FindingError(
                "crs_symptoms",
                False,
                T.e("symptoms_contradict_fever", temp=temp),
                T.e("symptoms_contradict_fever_hint"),
            )

    # ------------------------------------------------------------------ domains
    def domains(self, f: Mapping[str, Any]) -> list[Domain]:
        other = set(f.get("attribution_other_cause", []))
        doms = [self._symptoms(f, other), self._hypotension(f, other), self._hypoxia(f, other)]
        for organ in ("organ", "transaminitis"):
            if self.t.organ_map(organ) is not None:
                doms.append(self._organ(f, organ))
        for flag, key in zip(FLAGS, _FLAG_FINDINGS, strict=True):
            if self.t.flag(flag) is not None:
                doms.append(self._flag(f, flag, key))
        doms.append(self._death(f, "death_due_to_crs"))
        unused = [k for k in f if k not in self.t.reads]
        if unused:
            doms.append(
                Domain(
                    "unused",
                    (None,),
                    reasons=[T.m("not_used", keys=unused)],
                    assumed=True,
                )
            )
        return _prune(doms)

    def _symptoms(self, f: Mapping[str, Any], other: set[str]) -> Domain:
        e = self.t.symptoms
        name = "symptoms"
        temp = f.get("temperature_c")
        thr = _C.fever_min_c
        fever: bool | None = None
        if "fever" in other:
            fever = False
        elif temp is not None:
            fever = temp >= thr
        if self.t.symptoms_from == "fever":
            if fever is None:
                return unknown(name, (0, e.grade), "temperature_c")
            if fever:
                hit = self._hit(name, "fever", e, T.m("fever_detail", temp=temp, thr=thr), path="symptoms")
                return known(name, e.grade, hit)
            why = T.m("no_fever_other_cause") if "fever" in other else T.m("no_fever", temp=temp, thr=thr)
            return known(name, 0, reason=why)
        if fever:
            hit = self._hit(name, "fever", e, T.m("fever_named", temp=temp, thr=thr), path="symptoms")
            return known(name, e.grade, hit)
        symptoms = f.get("crs_symptoms")
        if symptoms is None:
            return unknown(name, (0, e.grade), "crs_symptoms")
        if symptoms:
            hit = self._hit(name, "symptoms", e, T.m("crs_symptoms_present"), path="symptoms")
            return known(name, e.grade, hit)
        return known(name, 0, reason=T.m("no_crs_symptoms"))

    @staticmethod
    def _on_pressors(f: Mapping[str, Any]) -> bool | None:
        """True/False when vasopressor use is known (given or implied), else None."""
        if f.get("vasopressors"):
            return True
        if (
            f.get("vasopressor_high_dose") is True
            or f.get("hypotension_refractory") is True
            or (f.get("vasopressor_hours") or 0) > 0
        ):
            return True  # implied by another finding (contradictions refused in check)
        return False if f.get("vasopressors") == [] else None

    def _hypotension(self, f: Mapping[str, Any], other: set[str]) -> Domain:
        name = "hypotension"
        if "hypotension" in other:
            return known(name, 0, reason=T.m("hypotension_other_cause"))
        rows = self.t.hypotension
        if f.get("hypotension_refractory") and "refractory" in rows:
            return known(name, rows["refractory"].grade, self._hit(name, "refractory", rows["refractory"]))
        rule = self.t.hypotension_rule
        base = {
            "count_and_dose": self._by_count_and_dose,
            "dose": self._by_dose,
            "duration": self._by_duration,
        }[rule](f)
        # the refractory / life-threatening criterion, when the scale has one and it was not given
        # (Penn: refractory implies high dose, already covered by the dose criterion)
        if (
            rule != "dose"
            and "refractory" in rows
            and f.get("hypotension_refractory") is None
            and _grades(base)[-1] > 0
            and self._on_pressors(f) is not False
            and _grades(base)[-1] < rows["refractory"].grade
        ):
            base = _with(base, extra=(rows["refractory"].grade,), missing="hypotension_refractory")
        return base

    def _by_count_and_dose(self, f: Mapping[str, Any]) -> Domain:
        """Lee 2014, CARTOX: fluids or one low-dose vasopressor; high-dose or multiple vasopressors."""
        name = "hypotension"
        pressors = f.get("vasopressors")
        on = self._on_pressors(f)
        low = self._entry(name, "one_vasopressor_low_dose")
        high = self._entry(name, "high_dose_vasopressor")
        multi = self._entry(name, "multiple_vasopressors")
        if on is True:
            if pressors and len(pressors) >= 2:
                return known(
                    name, multi.grade, self._hit(name, "multiple_vasopressors", multi, name_of(pressors))
                )
            high_dose = f.get("vasopressor_high_dose")
            hours = f.get("vasopressor_hours")
            note = None
            min_h = self.t.high_dose_min_hours
            if high_dose and min_h is not None and hours is not None and hours < min_h:
                high_dose = False
                note = T.m("high_dose_too_short", hours=hours, min_h=min_h)
            if high_dose:
                detail = name_of(pressors) if pressors else as_given("vasopressor_high_dose")
                return known(name, high.grade, self._hit(name, "high_dose_vasopressor", high, detail))
            if pressors:  # exactly one agent
                if high_dose is None:
                    return unknown(
                        name,
                        (low.grade, high.grade),
                        "vasopressor_high_dose",
                        reason=T.m("one_pressor_dose_unknown", agent=as_given(pressors[0])),
                    )
                d = known(
                    name,
                    low.grade,
                    self._hit(name, "one_vasopressor_low_dose", low, as_given(pressors[0])),
                )
                if note:
                    d.reasons.append(note)
                return d
            need = ["vasopressors"] + ([] if high_dose is not None else ["vasopressor_high_dose"])
            d = unknown(name, (low.grade, multi.grade), *need, reason=T.m("agents_unknown"))
            if note:
                d.reasons.append(note)
            return d
        hypo = f.get("hypotension")
        fluids = self._entry(name, "no_vasopressor")
        if on is False:
            if hypo is None:
                return unknown(name, (0, fluids.grade), "hypotension")
            if hypo:
                return known(
                    name, fluids.grade, self._hit(name, "no_vasopressor", fluids, T.m("no_vasopressor"))
                )
            return known(name, 0, reason=T.m("no_hypotension"))
        if hypo is False:
            return known(name, 0, reason=T.m("no_hypotension"))
        if hypo:
            return unknown(
                name, (fluids.grade, multi.grade), "vasopressors", reason=T.m("hypotension_present")
            )
        return unknown(name, (0, fluids.grade, multi.grade), "hypotension", "vasopressors")

    def _by_dose(self, f: Mapping[str, Any]) -> Domain:
        """Penn: IV fluids or low-dose vasopressors = 3; high-dose vasopressors = 4."""
        name = "hypotension"
        pressors = f.get("vasopressors")
        on = self._on_pressors(f)
        low = self._entry(name, "low_dose_vasopressor")
        high = self._entry(name, "high_dose_vasopressor")
        fluids = self._entry(name, "fluids")
        if on is True:
            detail = name_of(pressors) if pressors else None
            high_dose = f.get("vasopressor_high_dose")
            if high_dose is None:
                return unknown(
                    name,
                    (low.grade, high.grade),
                    "vasopressor_high_dose",
                    reason=T.m("pressors_dose_unknown", agents=detail)
                    if detail
                    else T.m("pressors_agents_dose_unknown"),
                )
            key, e = ("high_dose_vasopressor", high) if high_dose else ("low_dose_vasopressor", low)
            return known(name, e.grade, self._hit(name, key, e, detail))
        hypo = f.get("hypotension")
        if on is False:
            if hypo is None:
                return unknown(name, (0, fluids.grade), "hypotension")
            if hypo:
                return known(
                    name,
                    fluids.grade,
                    self._hit(name, "fluids", fluids, T.m("hypotension_no_vasopressor")),
                )
            return known(name, 0, reason=T.m("no_hypotension"))
        if hypo is False:
            return known(name, 0, reason=T.m("no_hypotension"))
        if hypo:
            return unknown(
                name, (fluids.grade, high.grade), "vasopressors", reason=T.m("hypotension_present")
            )
        return unknown(name, (0, fluids.grade, high.grade), "hypotension", "vasopressors")

    def _by_duration(self, f: Mapping[str, Any]) -> Domain:
        """MSKCC: any vasopressors < 24 h = 2, >= 24 h = 3."""
        name = "hypotension"
        short = self._entry(name, "vasopressor_under_24h")
        long_ = self._entry(name, "vasopressor_24h_or_more")
        on = self._on_pressors(f)
        if on is True:
            hours = f.get("vasopressor_hours")
            if hours is None:
                return unknown(
                    name, (short.grade, long_.grade), "vasopressor_hours", reason=T.m("pressors_used")
                )
            limit = self.t.long_vasopressor_min_hours
            assert limit is not None  # required by the duration rule (legacy_crs_spec)
            key, e = (
                ("vasopressor_24h_or_more", long_) if hours >= limit else ("vasopressor_under_24h", short)
            )
            return known(name, e.grade, self._hit(name, key, e, T.m("hours", hours=hours)))
        if on is False:
            why = T.m("no_vasopressors_mskcc") if f.get("hypotension") else T.m("no_vasopressors")
            return known(name, 0, reason=why)
        if f.get("hypotension") is False:
            return known(name, 0, reason=T.m("no_hypotension"))
        return unknown(name, (0, short.grade, long_.grade), "vasopressors")

    def _hypoxia(self, f: Mapping[str, Any], other: set[str]) -> Domain:
        name = "hypoxia"
        if "hypoxia" in other:
            return known(name, 0, reason=T.m("hypoxia_other_cause"))
        device, fio2 = f.get("oxygen"), f.get("fio2_pct")
        room_air = _C.room_air_fio2_pct
        if device == "none":
            return known(name, 0, reason=T.m("room_air"))
        if self.t.hypoxia_rule == "device":
            o2 = self._entry(name, "supplemental_oxygen")
            vent = self._entry(name, "mechanical_ventilation")
            if device in _C.ventilator_devices:
                return known(
                    name,
                    vent.grade,
                    self._hit(name, "mechanical_ventilation", vent, as_given(str(device))),
                )
            if device is not None:
                return known(
                    name, o2.grade, self._hit(name, "supplemental_oxygen", o2, as_given(str(device)))
                )
            if fio2 is None:
                return unknown(name, (0, o2.grade, vent.grade), "oxygen")
            if fio2 <= room_air:  # room air, or CPAP/BiPAP/ventilation on room air
                return unknown(
                    name,
                    (0, o2.grade, vent.grade),
                    "oxygen",
                    reason=T.m("fio2_room_air_no_device", fio2=fio2),
                )
            d = unknown(
                name,
                (o2.grade, vent.grade),
                "oxygen",
                reason=T.m("device_unknown_ventilation"),
            )
            d.hits.append(self._hit(name, "supplemental_oxygen", o2, T.m("fio2", fio2=fio2)))
            return d
        # FiO2 scales
        lo, hi = self._entry(name, "fio2_below_40"), self._entry(name, "fio2_40_or_more")
        vent = self._entry(name, "ventilator")
        if device in _C.ventilator_devices:
            return known(name, vent.grade, self._hit(name, "ventilator", vent, as_given(str(device))))
        fio2_dom: Domain
        if fio2 is None:
            room_air_possible = device is None or device in _C.positive_pressure_devices
            possible = ((0,) if room_air_possible else ()) + (lo.grade, hi.grade)
            why = T.m("fio2_not_derived", device=as_given(device)) if device is not None else None
            fio2_dom = unknown(name, possible, "fio2_pct", reason=why)
        elif fio2 <= room_air:
            fio2_dom = known(name, 0, reason=T.m("fio2_no_requirement", fio2=fio2))
        else:
            key, e = ("fio2_40_or_more", hi) if fio2 >= _C.fio2_high_min_pct else ("fio2_below_40", lo)
            detail = (
                T.m("fio2_device", fio2=fio2, device=as_given(device)) if device else T.m("fio2", fio2=fio2)
            )
            fio2_dom = known(name, e.grade, self._hit(name, key, e, detail))
        if device is None:
            # without the device, ventilator support cannot be excluded
            out = _with(
                fio2_dom,
                extra=(vent.grade,),
                missing="oxygen",
                reason=T.m("device_unknown_ventilator"),
            )
            if fio2 is None:
                out.missing = ["oxygen", "fio2_pct"]
            return out
        return fio2_dom

    def _organ(self, f: Mapping[str, Any], organ: str) -> Domain:
        spec = self.t.organ_map(organ)
        assert spec is not None
        grades = list(spec.by_ctcae_grade)
        if organ == "transaminitis":
            g = f.get("transaminitis_grade")
            if g is None:
                return unknown(organ, spec.grades(), "transaminitis_grade")
            return self._organ_known(organ, grades, g, T(f"{self.key}.{organ}", ctcae=g))
        g = f.get("organ_toxicity_grade")
        if g is not None:
            return self._organ_known(organ, grades, g, T(f"{self.key}.{organ}", ctcae=g))
        creat = f.get("creatinine_grade")
        if creat is None:
            return unknown(organ, spec.grades(), "organ_toxicity_grade")
        d = unknown(
            organ,
            spec.grades(creat),
            "organ_toxicity_grade",
            reason=T.m("creatinine_known", creat=creat),
        )
        if grades[creat] > 0:
            msg = T.m("with_detail", text=T(f"{self.key}.{organ}", ctcae=creat), detail=T.m("creatinine"))
            rule = f"{self.id}/organ/ctcae-{creat}"
            d.hits.append(RuleHit.of(rule, organ, grades[creat], msg))
        return d

    def _organ_known(self, organ: str, grades: list[int], g: int, text: Msg) -> Domain:
        if grades[g] == 0:
            why = T.m("organ_not_criterion", text=text) if g else T.m("organ_none", text=text)
            return known(organ, 0, reason=why)
        rule = f"{self.id}/{organ}/ctcae-{g}"
        hit = RuleHit.of(rule, organ, grades[g], text)
        return known(organ, grades[g], hit)

    def _flag(self, f: Mapping[str, Any], name: str, key: str) -> Domain:
        e = self.t.flag(name)
        assert e is not None
        v = f.get(key)
        if v is None:
            return unknown(name, (0, e.grade), key)
        if v:
            return known(name, e.grade, self._hit(name, "present", e, path=name))
        return known(name, 0)

    # ------------------------------------------------------------------ combination
    def combine(self, v: Mapping[str, Any]) -> int:
        if v["death"]:
            return 5
        return int(max(x for k, x in v.items() if k in _GRADED))

    def deciding(self, v: Mapping[str, Any], grade: int) -> list[str]:
        if grade == 5:
            return ["death"]
        return [k for k in _GRADED if k in v and v[k] == grade and grade > 0]

    def summary(self, v: Mapping[str, Any], grade: int) -> Msg:
        if grade == 5:
            return T.m("grade5")
        if grade == 0:
            return T.m("grade0")
        domains = and_list([self.domain_name(d) for d in self.deciding(v, grade)])
        return T.m("grade", grade=grade, domains=domains)


class Lee2014Crs(LegacyCrs):
    id = "lee2014:crs"
    key = "lee2014"


class PennCrs(LegacyCrs):
    id = "penn:crs"
    key = "penn"


class MskccCrs(LegacyCrs):
    id = "mskcc:crs"
    key = "mskcc"


class CartoxCrs(LegacyCrs):
    id = "cartox:crs"
    key = "cartox"


def scales() -> list[Scale]:
    """The scales this module provides (read by the catalogue)."""
    return [Lee2014Crs(), PennCrs(), MskccCrs(), CartoxCrs()]
