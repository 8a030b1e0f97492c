"""The service's refusals of an observation's code, value, unit or dose are written in the
reader's language (issue 11: no English sentence on a French page); the English is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from immunotox.errors import FindingError
from immunotox.messages import error_message
from immunotox.service import codes


def _temp(value: Any, unit: str | None) -> Any:
    return codes.normalize(codes.resolve("temperature"), value, unit)


CASES: list[tuple[Callable[[], Any], str, str]] = [
    (lambda: codes.resolve("nope"), "unknown code", "code inconnu"),
    (
        lambda: _temp(55, "Cel"),
        "outside the physically possible range",
        "hors de l'intervalle physiquement possible",
    ),
    (lambda: _temp(131, "[degF]"), "(= 55 Cel)", "(= 55 Cel)"),
    (
        lambda: _temp("abc", "Cel"),
        "expected a number written plainly",
        "attendu : un nombre écrit simplement",
    ),
    (lambda: _temp(38, None), "a unit is required for temperature", "une unité est requise pour temperature"),
    (
        lambda: codes.normalize(codes.resolve("oxygen"), "tent", None),
        "not a known oxygen value",
        "valeur inconnue pour oxygen",
    ),
    (lambda: codes.check_dose(-1, "mg"), "a dose must be > 0", "une dose doit être > 0"),
    (lambda: codes.check_dose(8, None), "a dose needs its UCUM unit", "une dose exige son unité UCUM"),
    (lambda: codes.check_dose(8, "furlong"), "unknown UCUM unit", "unité UCUM inconnue"),
]


@pytest.mark.parametrize(("call", "en", "fr"), CASES)
def test_a_refused_observation_is_explained_in_french_and_english(
    call: Callable[[], Any], en: str, fr: str
) -> None:
    with pytest.raises(FindingError) as err:
        call()
    english, french = error_message(err.value, "en"), error_message(err.value, "fr")
    assert english == str(err.value) and en in english
    assert fr in french
    if en != fr:
        assert en not in french
    assert "Hint:" not in french
