"""Observation rows: row blocks accumulated as arrays, then sorted and assembled as the Arrow
table of the observation contract (codes, LOINC aliases, tokens, units, decimals)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _vocab as V
from ._latent import Arr, Latent

_CODE_UNIT = np.array(
    [V.UNIT_ID[V.SPEC[V.LOINC_TO_CODE.get(c, c)].unit] for c in V.ALL_CODES], dtype=np.int64
)
_CODE_DEC = np.array([V.SPEC[V.LOINC_TO_CODE.get(c, c)].decimals for c in V.ALL_CODES], dtype=np.int64)
_CODE_IS_NUM = np.array([V.SPEC[V.LOINC_TO_CODE.get(c, c)].kind == "number" for c in V.ALL_CODES])


def _cid(code: str) -> int:
    return V.CODE_ID[code]


def _tid(token: str) -> int:
    return V.TOKEN_ID[token]


_DEVICE_TOK = np.array([_tid(d) for d in V.DEVICES])
_CONS_TOK = np.array([_tid(c) for c in V.CONSCIOUSNESS])
_SEIZ_TOK = np.array([_tid(s) for s in V.SEIZURE])
_MOTOR_TOK = np.array([_tid(m) for m in V.MOTOR])
_ALIAS = {c: [_cid(a) for a in V.LOINC[c]] for c in V.LOINC}


class _Rows:
    """Accumulates row blocks as arrays: patient, minute, code, number/token, end, dose, unit."""

    def __init__(self) -> None:
        self.blocks: list[tuple[Arr, ...]] = []

    def add(
        self,
        p: Arr,
        t: Arr,
        code: Arr,
        num: Arr | None = None,
        tok: Arr | None = None,
        end: Arr | None = None,
        dose: Arr | None = None,
        du: Arr | None = None,
    ) -> None:
        m = p.shape[0]
        self.blocks.append(
            (
                p.astype(np.int64),
                np.rint(t).astype(np.int64),
                np.broadcast_to(code, (m,)).astype(np.int64),
                np.full(m, np.nan) if num is None else num.astype(np.float64),
                np.full(m, -1, dtype=np.int64) if tok is None else tok.astype(np.int64),
                np.full(m, np.nan) if end is None else end.astype(np.float64),
                np.full(m, np.nan) if dose is None else dose.astype(np.float64),
                np.full(m, -1, dtype=np.int64) if du is None else du.astype(np.int64),
            )
        )

    def grid(
        self,
        t_min: Arr,
        values: Arr,
        codes: tuple[str, ...],
        keep: Arr,
        loinc_u: Arr | None,
        loinc_fraction: float,
        tokens: bool = False,
    ) -> None:
        """Rows of a (n, slots, codes) grid where ``keep`` (n, slots[, codes]) is true."""
        for c, code in enumerate(codes):
            k = keep if keep.ndim == 2 else keep[:, :, c]
            idx = np.nonzero(k)
            p = idx[0]
            t = t_min[idx]
            v = values[:, :, c][idx]
            cid = np.full(p.shape[0], _cid(code), dtype=np.int64)
            if loinc_u is not None and loinc_fraction > 0 and code in _ALIAS:
                aliases = _ALIAS[code]
                use = loinc_u[:, :, c][idx] < loinc_fraction
                which = idx[1] % len(aliases)
                cid = np.where(use, np.array(aliases)[which], cid)
            if tokens:
                self.add(p, t, cid, tok=v)
            else:
                self.add(p, t, cid, num=np.round(v, V.SPEC[code].decimals))

    def columns(self) -> list[Arr]:
        """The 8 columns, concatenated; the blocks are released."""
        blocks: list[list[Arr | None]] = [list(b) for b in self.blocks]
        self.blocks = []
        out: list[Arr] = []
        for i in range(8):
            out.append(np.concatenate([b[i] for b in blocks]))
            for b in blocks:
                b[i] = None
        return out


def _assemble(rows: _Rows, lat: Latent, ids: list[str]) -> tuple[Any, Arr]:
    """Sort the rows by (patient, time, code) and build the contract table."""
    cols = rows.columns()
    cols[1] = lat.t0_s[cols[0]] + cols[1] * 60  # minutes after infusion -> epoch seconds
    base = int(cols[1].min()) if cols[1].size else 0
    order = np.argsort((cols[0] << 41) | ((cols[1] - base) << 8) | cols[2], kind="stable")
    for i in range(8):
        cols[i] = cols[i][order]
    del order
    p, t_s, code, num, tok, end, dose, du = cols
    is_tok = tok >= 0
    dec = _CODE_DEC[code]
    scale = 10.0**dec
    num = np.round(num * scale) / scale
    num_str = pa.array(num).cast(pa.string())
    tok_str = pa.array(V.ALL_TOKENS).take(pa.array(np.maximum(tok, 0)))
    value = pc.if_else(pa.array(is_tok), tok_str, num_str)
    end_ok = ~np.isnan(end)
    end_s = lat.t0_s[p] + np.where(end_ok, np.rint(end), 0).astype(np.int64) * 60
    table = pa.Table.from_arrays(
        [
            pa.array(ids).take(pa.array(p)),
            pa.array(t_s * 1_000_000, type=V.TIMESTAMP),
            pa.array(V.ALL_CODES).take(pa.array(code)),
            value,
            pa.array(V.UNITS).take(pa.array(_CODE_UNIT[code])),
            pa.array(end_s * 1_000_000, type=V.TIMESTAMP, mask=~end_ok),
            pa.array(dose, mask=np.isnan(dose)),
            pa.array(V.DOSE_UNITS).take(pa.array(du, mask=du < 0)),
        ],
        schema=V.OBSERVATION_SCHEMA,
    )
    return table, p


def _ts(lat: Latent, h: Arr) -> Any:
    ok = np.isfinite(h)
    us = (lat.t0_s + np.where(ok, np.rint(h * 60.0), 0).astype(np.int64) * 60) * 1_000_000
    return pa.array(us, type=V.TIMESTAMP, mask=~ok)
