"""Corticosteroid equivalence: a dose of one glucocorticoid in every other (``data/drugs.toml``;
the sources are cited by :func:`convert_steroid`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FindingError
from ..messages import error
from ..sources import source
from ._dose_rule import SourceRef
from ._drugs import steroid_table
from ._inputs import _number
from ._vocab import check_lang


class SteroidConversion(BaseModel):
    """A corticosteroid dose and its glucocorticoid equivalents."""

    model_config = ConfigDict(frozen=True)

    drug: str
    mg: float
    equivalents_mg: dict[str, float]
    basis: str
    table_mg: dict[str, float] = Field(description="The equivalence table used: equivalent doses in mg")
    sources: list[SourceRef]
    note: str


def _steroid_name(field: str, raw: Any) -> str:
    table = steroid_table().mg
    if not isinstance(raw, str) or raw.strip().lower() not in table:
        raise FindingError(
            field, raw, error("mg_not_steroid"), error("mg_use_one_of", values=str(list(table)))
        )
    return raw.strip().lower()


def convert_steroid(mg: Any, from_drug: Any, to_drug: Any) -> float:
    """The dose of ``to_drug`` equivalent to ``mg`` of ``from_drug`` (glucocorticoid effect).

    Uses the table in ``data/drugs.toml``: hydrocortisone 20 = prednisone 5 = prednisolone 5 =
    methylprednisolone 4 = dexamethasone 0.75 mg.

    References
    ----------
    Meikle AW, Tyler FH. Potency and duration of action of glucocorticoids. Am J Med
    1977;63(2):200-207 (table as reproduced by drug references).
    Schneider BJ, et al. ASCO guideline update. J Clin Oncol 2021;39(36):4073-4126.
    doi:10.1200/JCO.21.01440 (hydrocortisone 20 mg ≈ prednisone 5 mg).

    Examples
    --------
    >>> round(convert_steroid(10, "dexamethasone", "methylprednisolone"), 1)
    53.3
    """
    a, b = _steroid_name("from", from_drug), _steroid_name("to", to_drug)
    amount = _number("mg", mg, lo=1e-6, hi=100_000)
    table = steroid_table().mg
    return amount / table[a] * table[b]


def steroid_equivalents(mg: Any, from_drug: Any, *, lang: str = "en") -> SteroidConversion:
    """``mg`` of ``from_drug`` expressed in every corticosteroid of the equivalence table."""
    lang = check_lang(lang)
    a = _steroid_name("drug", from_drug)
    amount = _number("mg", mg, lo=1e-6, hi=100_000)
    t = steroid_table()
    return SteroidConversion(
        drug=a,
        mg=amount,
        equivalents_mg={k: round(convert_steroid(amount, a, k), 3) for k in t.mg},
        basis=t.basis.get(lang),
        table_mg=dict(t.mg),
        sources=[
            SourceRef(key=k, citation=source(k).citation(), locator=t.locator, verification=t.verification)
            for k in t.sources
        ],
        note=t.note.get(lang),
    )
