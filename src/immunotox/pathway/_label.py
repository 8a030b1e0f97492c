"""Which label periods apply: the jurisdiction (a setting) and the patient's CAR-T product.

A period is only ever read for the exact (jurisdiction, label version, product): with no
jurisdiction configured, no product given, or a product the version does not describe, the
periods have no number and the patient text says why. There is no default jurisdiction and no
fallback to the US label.

Examples
--------
>>> c = resolve_label(None, "axi-cel")
>>> c.status, c.periods()["proximity"].days
('no_jurisdiction', None)
>>> c = resolve_label("US", "Yescarta")
>>> c.status, c.version.id, c.periods()["proximity"].days
('ok', 'fda-2025', 14)
>>> c.phrase("proximity", "fr")
'au moins 14 jours'
>>> resolve_label("FR", "kymriah").phrase("no_driving", "fr")
'la durée fixée par votre équipe selon le RCP'
>>> resolve_label("EU", "teclistamab")
Traceback (most recent call last):
...
immunotox.pathway._errors.PathwayError: product = 'teclistamab': a bispecific product: the CAR-T pathway...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import FindingError
from ..jurisdiction import Jurisdiction, optional_jurisdiction
from ..messages import error
from ._data import PERIODS, Label, LabelVersion, Lang, Period, data
from ._errors import PathwayError

LabelStatus = Literal["ok", "no_jurisdiction", "no_product", "not_covered"]
_NONE = Period(days=None, verification="", source="", note="")


@dataclass(frozen=True)
class Product:
    """A CAR-T product as the pathway names it (id, brand, INN)."""

    id: str
    brand: str
    name: str

    def display(self) -> str:
        return f"{self.brand} ({self.name})" if self.brand else self.name


@dataclass(frozen=True)
class LabelChoice:
    """The label that applies to one patient, or why none does (``status``)."""

    status: LabelStatus
    jurisdiction: Jurisdiction | None
    product: Product | None
    version: LabelVersion | None
    label: Label | None

    def periods(self) -> dict[str, Period]:
        """The four periods; without an applicable label each has no number."""
        return self.label.periods() if self.label is not None else dict.fromkeys(PERIODS, _NONE)

    def phrase(self, name: str, lang: Lang) -> str:
        """« au moins 14 jours » for a verified period, else « la durée fixée par votre équipe… »."""
        p = self.periods()[name]
        t = data().label_texts
        if p.days is None:
            return t["unknown"].get(lang)
        return t["known"].get(lang).format(days=p.days)

    def unverified(self) -> list[str]:
        """Names of the periods of the applicable label that are not verified ([M])."""
        return [n for n, p in self.periods().items() if p.verification == "M"]

    def message(self, lang: Lang) -> str:
        """The sentence naming the label version and its jurisdiction, or why there is none."""
        t = data().label_texts
        if self.status == "no_jurisdiction":
            return t["no_jurisdiction"].get(lang)
        if self.status == "no_product":
            return t["no_product"].get(lang)
        if self.status == "not_covered":
            assert self.product is not None
            version = self.version.title.get(lang) if self.version is not None else "—"
            return t["not_covered"].get(lang).format(product=self.product.display(), version=version)
        assert self.version is not None and self.jurisdiction is not None and self.product is not None
        out = (
            t["source"]
            .get(lang)
            .format(
                version=f"{self.version.title.get(lang)} [{self.version.id}]",
                document=self.jurisdiction.document(lang),
                jurisdiction=self.jurisdiction.name(lang),
            )
        )
        if self.unverified():
            out += " " + t["unverified"].get(lang)
        return out


def check_product(value: object) -> Product | None:
    """The CAR-T product named ``value`` (id, INN or brand, any case); None when absent.

    An unknown product or one of another therapy class is refused, naming ``product``.
    """
    if value is None:
        return None
    from ..management._drugs import resolve_product

    try:
        p = resolve_product("product", value)
    except FindingError as exc:
        raise PathwayError("product", value, *exc.texts()) from None
    if not p.product_class.startswith("cart"):
        cart = [k for k, x in _products().items() if x.startswith("cart")]
        raise PathwayError(
            "product",
            value,
            error("pathway.not_cart", product_class=p.product_class),
            error("pathway.one_of", values=", ".join(cart)),
        )
    return Product(id=p.id, brand=p.brand, name=p.name)


def _products() -> dict[str, str]:
    from ..management._drugs import drug_data

    return {k: v.product_class for k, v in drug_data().products.items()}


def check_jurisdiction(value: object) -> Jurisdiction | None:
    """A :class:`~immunotox.jurisdiction.Jurisdiction`, a code or country, or None (not configured)."""
    if isinstance(value, Jurisdiction):
        return value
    try:
        return optional_jurisdiction(value, "jurisdiction")
    except FindingError as exc:
        raise PathwayError("jurisdiction", value, *exc.texts()) from None


def resolve_label(jurisdiction: object, product: object, label: object = None) -> LabelChoice:
    """The label that applies for ``jurisdiction`` and ``product``; ``label`` picks a version of
    that jurisdiction other than the current one.

    Raises
    ------
    PathwayError
        Unknown jurisdiction, product (or a product that is not a CAR-T product) or label
        version; a label version without a jurisdiction, or of another jurisdiction.
    """
    d = data()
    jur = check_jurisdiction(jurisdiction)
    prod = check_product(product)
    version: LabelVersion | None = None
    if label is not None:
        if not isinstance(label, str) or label not in d.label_versions:
            raise PathwayError(
                "label",
                label,
                error("pathway.unknown_label"),
                error("pathway.one_of", values=", ".join(d.label_versions)),
            )
        version = d.label_versions[label]
        if jur is None:
            raise PathwayError(
                "label",
                label,
                error("pathway.label_no_jurisdiction", jurisdiction=version.jurisdiction),
                error("pathway.label_no_jurisdiction_hint"),
            )
        if version.jurisdiction != jur.code:
            own = [v.id for v in d.label_versions.values() if v.jurisdiction == jur.code]
            raise PathwayError(
                "label",
                label,
                error(
                    "pathway.label_other_jurisdiction", jurisdiction=version.jurisdiction, configured=jur.code
                ),
                error("pathway.label_versions", jurisdiction=jur.code, values=", ".join(own))
                if own
                else error("pathway.label_versions_none", jurisdiction=jur.code),
            )
    if jur is None:
        return LabelChoice("no_jurisdiction", None, prod, None, None)
    if version is None:
        version = next(
            (v for v in d.label_versions.values() if v.jurisdiction == jur.code and v.current), None
        )
    if prod is None:
        return LabelChoice("no_product", jur, None, version, None)
    lab = d.labels.get((version.id, prod.id)) if version is not None else None
    if lab is None:
        return LabelChoice("not_covered", jur, prod, version, None)
    return LabelChoice("ok", jur, prod, version, lab)
