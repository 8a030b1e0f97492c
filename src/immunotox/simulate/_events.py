"""The sparse events of each patient: administrations, oxygen and vasopressor intervals, imaging
(a short loop per patient), and the infusion dose."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _latent as L
from . import _vocab as V
from ._latent import Arr, Latent
from ._params import Params
from ._profiles import Profiles
from ._rows import _DEVICE_TOK, _cid, _Rows, _tid


def _infusion_dose(tagged: Any, q: int) -> float:
    if tagged is None:
        return math.nan
    return float(tagged.value[q])


def _events(
    rows: _Rows,
    lat: Latent,
    gens: list[np.random.Generator],
    profiles: Profiles,
    params: Params,
    ice: dict[str, Any],
    cut: Arr,
    horizon: float,
) -> tuple[Arr, Arr]:
    """Administrations, oxygen and vasopressor intervals, imaging: a short loop per patient."""
    pol = profiles.p
    n = lat.crs_g.shape[0]
    ev: list[tuple[int, float, int, float, int, float, float, int]] = []
    nan = math.nan
    mg = V.DOSE_UNIT_ID["mg"]
    ml = V.DOSE_UNIT_ID["mL"]
    ugkg = V.DOSE_UNIT_ID["ug/kg/min"]
    ugmin = V.DOSE_UNIT_ID["ug/min"]
    iumin = V.DOSE_UNIT_ID["[iU]/min"]
    c_ox, c_flow, c_fio2 = _cid("oxygen"), _cid("o2_flow"), _cid("fio2")
    c_vp, c_ap, c_toci = _cid("vasopressor"), _cid("antipyretic"), _cid("tocilizumab")
    c_cs, c_ana, c_fl = _cid("corticosteroid"), _cid("anakinra"), _cid("fluid_bolus")
    c_edema, c_icp = _cid("cerebral_edema"), _cid("raised_icp_signs")
    c_icu, t_icu = _cid("icu"), _tid("icu")
    t_dex, t_mp, t_pred = _tid("dexamethasone"), _tid("methylprednisolone"), _tid("prednisone")
    ap_tok = (_tid("paracetamol"), _tid("metamizole"))
    a_tok = (_tid("norepinephrine"), _tid("phenylephrine"), _tid("vasopressin"))
    b_tok = (_tid("epinephrine"), _tid("phenylephrine"), _tid("dopamine"))
    n_toci = np.zeros(n, dtype=np.int64)
    steroid = np.zeros(n, dtype=bool)
    toci_mgkg, toci_max = pol("tocilizumab_mg_per_kg"), pol("tocilizumab_max_mg")
    p_rep2 = pol("tocilizumab_repeat_if_level2")
    p_dex2 = pol("dexamethasone_if_crs_grade2")
    p_ana = pol("anakinra_if_crs_grade4")
    crs_g = lat.crs_g.tolist()
    icans_g = lat.icans_g.tolist()
    S_all, D_all = lat.crs_S.tolist(), lat.crs_D.tolist()
    iS_all, iD_all = lat.icans_S.tolist(), lat.icans_D.tolist()
    img3, img4 = ice["imaging3"].tolist(), ice["imaging4"].tolist()
    for j in range(n):
        g = gens[j]
        stop = float(cut[j])
        died = math.isfinite(float(lat.death_h[j]))

        def add(
            t: float,
            code: int,
            tok: int = -1,
            num: float = nan,
            end: float = nan,
            dose: float = nan,
            du: int = -1,
            j: int = j,
            stop: float = stop,
            died: bool = died,
        ) -> None:
            if t >= stop:
                return
            if not math.isnan(end) and end >= stop:
                end = stop if died and stop < horizon else nan  # cut by death / still running
            ev.append((j, t * 60.0, code, num, tok, end * 60.0, dose, du))

        w = float(lat.weight[j])
        G = crs_g[j]
        if G >= 1:
            S, D = S_all[j], D_all[j]
            fever_end = min(float(lat.fever_stop[j]), D[0])

            def level(t: float, S: list[float] = S, D: list[float] = D) -> int:
                return sum(1 for k in range(4) if S[k] <= t < D[k])

            # antipyretic every 6 h while febrile
            t = float(lat.ap_start[j])
            while t < fever_end:
                add(t, c_ap, ap_tok[int(lat.ap_drug[j])], dose=1000.0, du=mg)
                t += 6.0
            if lat.hypo[j]:
                add(S[1] + 0.1, c_fl, _tid("crystalloid"), dose=1000.0, du=ml)
                if g.random() < 0.5 and S[1] + 2.5 < D[1]:
                    add(S[1] + 2.5, c_fl, _tid("crystalloid"), dose=500.0, du=ml)
                if G >= 3:
                    pa_ = int(lat.press_a[j])
                    add(S[2] - 0.25, c_fl, _tid("crystalloid"), dose=500.0, du=ml)
                    dose_a, du_a = _pressor_dose(pa_, g.random(), (ugkg, ugmin, iumin), first=True)
                    add(S[2], c_vp, a_tok[pa_], end=D[2], dose=dose_a, du=du_a)
                    if lat.press_vaso[j]:
                        add(S[2] + 0.5, c_vp, a_tok[2], end=D[2], dose=0.03, du=iumin)
                    if G >= 4:
                        pb = int(lat.press_b[j])
                        dose_b, du_b = _pressor_dose(pb, g.random(), (ugkg, ugmin, ugkg), first=False)
                        add(S[3], c_vp, b_tok[pb], end=D[3], dose=dose_b, du=du_b)
                        if pa_ == 2:  # vasopressin alone at level 3: norepinephrine joins at level 4
                            add(
                                S[3],
                                c_vp,
                                a_tok[0],
                                end=D[3],
                                dose=round(0.05 + 0.2 * g.random(), 2),
                                du=ugkg,
                            )
            if lat.hypox[j]:
                for lv in range(2, G + 1):
                    dev = int(lat.dev[j, lv])
                    spans = [(S[lv - 1], S[lv] if lv < G else D[lv - 1])]
                    if lv < G:
                        spans.append((D[lv], D[lv - 1]))
                    for a, b in spans:
                        if b <= a:
                            continue
                        add(a, c_ox, int(_DEVICE_TOK[dev]), end=b)
                        fl, fi = float(lat.flow[j, lv]), float(lat.fio2[j, lv])
                        if not math.isnan(fl):
                            add(a, c_flow, num=fl)
                        if not math.isnan(fi):
                            add(a, c_fio2, num=fi)
            # tocilizumab 8 mg/kg (max 800 mg), >= 8.5 h apart, <= 4 doses
            t = float(lat.toci1[j])
            dose = float(min(round(toci_mgkg * w), toci_max))
            count = 0
            while math.isfinite(t) and count < int(pol("tocilizumab_max_total")) and t < stop:
                lvl = level(t)
                if count > 0 and not (lvl >= 3 or (lvl == 2 and g.random() < p_rep2)):
                    break
                add(t, c_toci, _tid("tocilizumab"), dose=dose, du=mg)
                count += 1
                t += 8.5 + 3.5 * g.random()
            n_toci[j] = count
            # corticosteroids: dexamethasone 10 mg q6h while grade >= 3; methylprednisolone at grade 4
            t = float(lat.steroid_start[j])
            while t < D[2] + 6.0:
                if not S[3] <= t < D[3]:  # replaced by methylprednisolone while grade 4
                    add(t, c_cs, t_dex, dose=pol("dexamethasone_crs_grade3_mg"), du=mg)
                steroid[j] = True
                t += 6.0
            if G == 2 and math.isfinite(float(lat.toci1[j])) and g.random() < p_dex2:
                for dt in (8.0, 20.0):
                    add(float(lat.toci1[j]) + dt, c_cs, t_dex, dose=10.0, du=mg)
                steroid[j] = True
            if G >= 4:
                t, k = S[3] + 0.5 + g.random(), 0
                while t < D[3] and k < 6:
                    add(t, c_cs, t_mp, dose=pol("methylprednisolone_crs_grade4_mg"), du=mg)
                    t, k = t + 12.0, k + 1
                if g.random() < p_ana:
                    t = S[3] + 2.0
                    while t < D[3]:
                        add(t, c_ana, _tid("anakinra"), dose=pol("anakinra_mg"), du=mg)
                        t += 6.0
        IG = icans_g[j]
        if IG >= 2:
            iS, iD = iS_all[j], iD_all[j]
            t = iS[1] + 1.0 + 3.0 * g.random()
            while t < iD[1]:
                add(t, c_cs, t_dex, dose=pol("dexamethasone_icans_grade2_mg"), du=mg)
                t += 6.0
            if IG >= 4:
                t = iS[3] + 1.0 + 2.0 * g.random()
                for _ in range(3):
                    add(t, c_cs, t_mp, dose=pol("methylprednisolone_icans_grade4_mg"), du=mg)
                    t += 24.0
        # ICU stay [D]: admitted when CRS or ICANS reaches grade 3 (ASCO 2021, Santomasso et al.,
        # J Clin Oncol 2021;39:3978-92: grade 3 CRS "admit to ICU", grade 3 ICANS "ICU care");
        # discharged 24 h after the last of them falls below grade 3 (this project's choice)
        if G >= 3 or IG >= 3:
            spans = [(S_all[j][2], D_all[j][2])] if G >= 3 else []
            spans += [(iS_all[j][2], iD_all[j][2])] if IG >= 3 else []
            add(min(a for a, _ in spans), c_icu, t_icu, end=max(b for _, b in spans) + 24.0)
        if not math.isnan(img3[j]):
            e3 = "focal" if lat.sub3[j] == L.SUB3_EDEMA else "none"
            add(img3[j], c_edema, _tid(e3))
            add(img3[j], c_icp, _tid("false"))
        if not math.isnan(img4[j]) and lat.sub4[j] == L.SUB4_EDEMA:
            add(img4[j], c_edema, _tid("diffuse"))
            add(img4[j], c_icp, _tid("true"))
        hg = int(lat.hep_g[j])
        if hg >= 2:  # G2 prednisone, G3-4 methylprednisolone, daily from 3-4 days after onset, 14 days
            drug, per_kg = [
                (t_pred, pol("hepatitis_g2_prednisone_mg_per_kg")),
                (t_mp, pol("hepatitis_g3_methylprednisolone_mg_per_kg")),
                (t_mp, pol("hepatitis_g4_methylprednisolone_mg_per_kg")),
            ][hg - 2]
            t = float(lat.hep_on[j]) + 72.0 + 24.0 * g.random()
            for _ in range(14):
                add(t, c_cs, drug, dose=float(round(per_kg * w)), du=mg)
                t += 24.0
        if math.isfinite(float(lat.o2x_start[j])):
            a, b = float(lat.o2x_start[j]), float(lat.o2x_end[j])
            add(a, c_ox, _tid("low_flow_nasal_cannula"), end=b)
            add(a, c_flow, num=2.0)
        for t in lat.px_times[j].tolist():
            if math.isfinite(t):
                add(t, c_ap, _tid("paracetamol"), dose=1000.0, du=mg)
    if ev:
        cols = list(zip(*ev, strict=True))
        rows.add(
            np.array(cols[0]),
            np.array(cols[1]),
            np.array(cols[2]),
            num=np.array(cols[3]),
            tok=np.array(cols[4]),
            end=np.array(cols[5]),
            dose=np.array(cols[6]),
            du=np.array(cols[7]),
        )
    return n_toci, steroid


def _pressor_dose(which: int, u: float, units: tuple[int, int, int], first: bool) -> tuple[float, int]:
    """Dose and dose-unit id of a vasopressor (index into the level-3 or level-4 drug list)."""
    if first:  # norepinephrine, phenylephrine, vasopressin
        return [
            (round(0.05 + 0.25 * u, 2), units[0]),
            (float(round(50 + 150 * u)), units[1]),
            (0.04, units[2]),
        ][which]
    # epinephrine, phenylephrine, dopamine
    return [
        (round(0.02 + 0.18 * u, 2), units[0]),
        (float(round(50 + 150 * u)), units[1]),
        (float(round(5 + 10 * u)), units[2]),
    ][which]
