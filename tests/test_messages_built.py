"""The explanations of a grade stay complete when built fast (issue 19, live grading).

A grade builds its messages without validation (:func:`immunotox.messages.make`), writes each
message's English once and keeps it in the message, shares the texts every result of a scale
carries (title, notes, domain names) and builds its result without validating it again. These
tests pin what must not change: the texts in French and English, the JSON shape of the texts
as data, and that a result built fast is, field for field, the result validation builds.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import immunotox
from immunotox.messages import Msg, make, quote, render
from immunotox.result import GradeResult, RuleHit, Texts, texts

CRS = {
    "temperature_c": 39.5,
    "vasopressors": ["norepinephrine"],
    "oxygen": "low_flow_nasal_cannula",
    "o2_flow_l_min": 2,
}


def test_the_texts_of_a_grade_in_english_and_french_and_their_json_shape() -> None:
    r = immunotox.grade("astct2019:crs", CRS)
    assert r.reasons == [
        "Hypotension requiring a vasopressor with or without vasopressin (norepinephrine) → grade 3",
        "Hypoxia requiring low-flow nasal cannula (<= 6 L/min) (2 L/min) → grade 2",
        "Fever: temperature 39.5 °C >= 38 °C → grade 1",
        "Grade 3: the more severe of hypotension 3, hypoxia 2; fever present",
    ]
    fr = r.in_lang("fr")
    assert fr.reasons == [
        "Hypotension nécessitant un vasopresseur, avec ou sans vasopressine (norepinephrine) → grade 3",
        "Hypoxie nécessitant des lunettes nasales à bas débit (<= 6 L/min) (2 L/min) → grade 2",
        "Fièvre : température 39,5 °C >= 38 °C → grade 1",
        "Grade 3 : le plus sévère entre hypotension 3 et hypoxie 2 ; fièvre présente",
    ]
    assert fr.fired[1].text == "Hypoxie nécessitant des lunettes nasales à bas débit (<= 6 L/min) (2 L/min)"
    assert fr.title != r.title and fr.notes != r.notes and len(fr.notes) == len(r.notes) == 7
    d = r.model_dump(mode="json")
    flow = {
        "id": "scales/astct2019:messages.with_detail",
        "params": {
            "text": {"id": "scales/astct2019:crs.oxygen.low_flow_nasal_cannula", "params": {}},
            "detail": {"id": "scales/astct2019:messages.flow", "params": {"flow": 2.0}},
        },
    }
    assert d["fired"][1] == {
        "rule": "astct2019:crs/hypoxia/low_flow_nasal_cannula",
        "domain": "hypoxia",
        "grade": 2,
        "text": "Hypoxia requiring low-flow nasal cannula (<= 6 L/min) (2 L/min)",
        "msg": flow,
    }
    assert d["texts"]["reasons"][1] == {"id": "messages:hit_grade", "params": {"text": flow, "grade": 2}}
    assert d["texts"]["reasons"][3] == {
        "id": "scales/astct2019:messages.crs_grade",
        "params": {
            "grade": 3,
            "hypotension": 3,
            "hypoxia": 2,
            "gate": {"id": "scales/astct2019:messages.gate_fever", "params": {}},
        },
    }
    assert d["texts"]["title"] == {"id": "scales/astct2019:crs.title", "params": {}}
    assert list(d) == [*GradeResult.model_fields]  # fields in declaration order
    assert list(d["texts"]) == [*Texts.model_fields]


def _validated(r: GradeResult) -> GradeResult:
    """``r`` as validation builds it (every message, hit and list built again from JSON)."""
    return GradeResult.model_validate_json(r.model_dump_json())


def test_a_result_built_without_validation_is_the_validated_result_field_for_field() -> None:
    for scale, f in [
        ("astct2019:crs", CRS),
        ("astct2019:crs", {"temperature_c": 38.4}),  # incomplete: a lower bound
        ("lee2014:crs", CRS),
        ("astct2019:icans", {"ice_items": {"orientation": 4, "naming": 3}, "consciousness": "awake"}),
        (
            "ctcae5:blood-bilirubin-increased",
            {"value": {"value": 35.0, "unit": "umol/L"}, "uln": {"value": 20.5, "unit": "umol/L"}},
        ),
        (
            "ehaebmt2023:icaht",
            {"anc_series": {"unit": "/uL", "points": [{"day": d, "value": 90 * d} for d in range(31)]}},
        ),
    ]:
        r = immunotox.grade(scale, f)
        v = _validated(r)
        assert v == r and v.model_dump_json() == r.model_dump_json() and repr(v) == repr(r)
        # the fields given, as ``GradeResult(...)`` without ``lang`` (validation from JSON sets them all)
        assert r.model_fields_set == set(GradeResult.model_fields) - {"lang"}
        assert v.in_lang("fr") == r.in_lang("fr")  # rendered afresh vs kept in the messages
        assert v.explain("fr") == r.explain("fr") and v.explain("en") == r.explain("en")
        assert r.texts is not None and v.texts is not None
        assert r.texts.model_fields_set == set(Texts.model_fields)
        for h, hv in zip(r.fired, v.fired, strict=True):
            assert h == hv and h.model_fields_set == hv.model_fields_set == set(RuleHit.model_fields)


def test_the_fast_builders_equal_their_validated_forms() -> None:
    msg = make("scales/astct2019:messages.fever_present", {"temp": 39.5, "thr": 38.0})
    valid = Msg(id="scales/astct2019:messages.fever_present", params={"temp": 39.5, "thr": 38.0})
    assert msg == valid and msg.model_fields_set == valid.model_fields_set
    assert msg.model_dump_json() == valid.model_dump_json() and repr(msg) == repr(valid)
    hit = RuleHit.of("astct2019:crs/fever/present", "fever", 1, msg)
    assert hit == RuleHit(rule=hit.rule, domain="fever", grade=1, text=render(msg), msg=msg)
    assert hit.model_fields_set == {"rule", "domain", "grade", "text", "msg"}
    t = texts(msg, [msg], [], [], [msg])
    assert t == Texts(title=msg, reasons=[msg], notes=[], deciding=[], fired=[msg])
    assert t.model_fields_set == {"title", "reasons", "notes", "deciding", "fired"}


def test_a_message_keeps_its_text_per_language_and_a_changed_copy_writes_its_own() -> None:
    m = make("scales/astct2019:messages.no_fever", {"temp": 37.5, "thr": 38.0})
    assert render(m, "fr") == "Pas de fièvre : température 37,5 °C < 38 °C"
    assert render(m, "en") == "No fever: temperature 37.5 °C < 38 °C"
    assert render(m, "fr") == "Pas de fièvre : température 37,5 °C < 38 °C"  # not the English kept
    other = m.model_copy(update={"params": {"temp": 36.0, "thr": 38.0}})
    assert render(other, "en") == "No fever: temperature 36 °C < 38 °C"
    back = Msg.model_validate_json(m.model_dump_json())  # no text kept: written on first read
    assert render(back, "fr") == render(m, "fr") and back == m


def test_results_share_no_mutable_list() -> None:
    a = immunotox.grade("astct2019:crs", {"temperature_c": 38.4})
    b = immunotox.grade("astct2019:crs", {"temperature_c": 38.4})
    a.notes.append("changed")
    a.sources.append("changed")
    a.missing.append("changed")
    assert a.texts is not None and b.texts is not None
    a.texts.notes.append(a.texts.title)
    assert "changed" not in b.notes and "changed" not in b.sources and "changed" not in b.missing
    assert len(b.texts.notes) == len(b.notes)
    # the lower-bound reason names the missing inputs as graded, whatever happens to a.missing
    assert "changed" not in a.in_lang("fr").reasons[-1] and "changed" not in a.reasons[-1]


@settings(max_examples=60, deadline=None)
@given(
    temp=st.one_of(st.none(), st.floats(35.0, 41.5).map(lambda x: round(x, 1))),
    pressors=st.one_of(
        st.none(), st.lists(st.sampled_from(["norepinephrine", "vasopressin", "epinephrine"]), max_size=2)
    ),
    oxygen=st.one_of(
        st.none(), st.sampled_from(["none", "low_flow_nasal_cannula", "high_flow_nasal_cannula"])
    ),
    scale=st.sampled_from(["astct2019:crs", "lee2014:crs", "penn:crs", "mskcc:crs", "cartox:crs"]),
)
def test_fast_and_validated_results_agree_on_random_findings(
    temp: float | None, pressors: list[str] | None, oxygen: str | None, scale: str
) -> None:
    f: dict[str, Any] = {}
    if temp is not None:
        f["temperature_c"] = temp
    if pressors is not None:
        f["vasopressors"] = pressors
    if oxygen is not None:
        f["oxygen"] = oxygen
    try:
        r = immunotox.grade(scale, f, ignore_unused=True)
    except immunotox.FindingError:
        return
    v = _validated(r)
    assert json.loads(v.model_dump_json()) == json.loads(r.model_dump_json())
    assert v.model_dump_json() == r.model_dump_json()
    fr = r.in_lang("fr")
    assert fr.model_dump_json() == v.in_lang("fr").model_dump_json()
    assert fr == immunotox.grade(scale, f, ignore_unused=True, lang="fr")


def test_a_message_is_plain_data_with_the_json_schema_of_the_model_it_was() -> None:
    """``Msg`` is a plain class (cheap to build); pydantic sees the model it used to be: the same
    JSON schema (pinned here, OpenAPI shows it), validation, copies, pickling and immutability."""
    s = GradeResult.model_json_schema()
    item: list[dict[str, Any]] = [
        {"$ref": "#/$defs/Msg"},
        {"type": "boolean"},
        {"type": "integer"},
        {"type": "number"},
        {"type": "string"},
    ]
    assert s["$defs"]["Msg"] == {
        "description": "A text for people: the id of a text in the data files and its named parameters.",
        "properties": {
            "id": {"title": "Id", "type": "string"},
            "params": {
                "additionalProperties": {"anyOf": [*item, {"items": {"anyOf": item}, "type": "array"}]},
                "default": {},
                "title": "Params",
                "type": "object",
            },
        },
        "required": ["id"],
        "title": "Msg",
        "type": "object",
    }
    assert s["$defs"]["Texts"]["properties"]["title"] == {"$ref": "#/$defs/Msg"}
    assert GradeResult.model_json_schema(mode="serialization") == s
    inner = make("scales/astct2019:messages.flow", {"flow": 2.0})
    m = make("scales/astct2019:messages.with_detail", {"text": quote("x"), "detail": inner})
    assert render(m) == "“x” (2 L/min)"  # its texts kept: neither pickled into equality nor compared
    for back in (
        pickle.loads(pickle.dumps(m)),
        copy.deepcopy(m),
        copy.copy(m),
        Msg.model_validate(m.model_dump()),
    ):
        assert back == m and type(back.params["detail"]) is Msg and repr(back) == repr(m)
        assert render(back, "fr") == render(m, "fr")
    assert Msg.model_validate(m) is m  # an instance is taken as is, as a model instance was
    with pytest.raises(pydantic.ValidationError):
        Msg(id="messages:hit_grade", params={"text": {"no": "id"}})
    with pytest.raises(TypeError):
        m.id = "other"
    with pytest.raises(TypeError):
        hash(m)  # params is a dict: unhashable, as the frozen model was
    assert m != m.model_copy(update={"id": "verbatim"}) and m.model_copy() == m
