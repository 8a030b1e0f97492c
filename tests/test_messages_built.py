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
import threading
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


# ---------------------------------------------------------------- texts written on first read
CASES: list[tuple[str, dict[str, Any]]] = [
    ("astct2019:crs", CRS),
    ("astct2019:crs", {"temperature_c": 38.4}),
    ("lee2014:crs", CRS),
    ("astct2019:icans", {"ice_items": {"orientation": 4, "naming": 3}, "consciousness": "awake"}),
    (
        "ctcae5:blood-bilirubin-increased",
        {
            "value": {"value": 35.0, "unit": "umol/L"},
            "uln": {"value": 20.5, "unit": "umol/L"},
            "baseline": {"value": 10.0, "unit": "umol/L"},
        },
    ),
]


def _unwritten(r: GradeResult) -> list[str]:
    """The text fields of ``r`` still held as messages (their text not written yet)."""
    out = ["reasons"] if type(r.__dict__["reasons"]).__name__ == "_Unwritten" else []
    hits = [h.__dict__["text"] for h in r.fired]
    return out + [f"fired.{i}" for i, text in enumerate(hits) if type(text).__name__ == "_Unwritten"]


def _written(r: GradeResult) -> GradeResult:
    """``r`` with its texts read (written) once."""
    _ = r.reasons, [h.text for h in r.fired]
    assert not _unwritten(r)
    return r


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize(("scale", "f"), CASES)
def test_reasons_and_fired_texts_are_written_on_first_read_whatever_reads_them(
    scale: str, f: dict[str, Any], lang: str
) -> None:
    """A grade keeps ``reasons`` and ``fired[].text`` as messages until read (issue 19: writing
    them is a third of a live grade); every way of reading a result writes them first, so each
    shows what the result with its texts written shows."""

    def fresh() -> GradeResult:
        r = immunotox.grade(scale, f, lang=lang)  # type: ignore[arg-type]
        assert _unwritten(r) == ["reasons", *(f"fired.{i}" for i in range(len(r.fired)))]
        return r

    ref = _written(fresh())
    v = _validated(ref)
    assert fresh().reasons == ref.reasons == v.reasons and fresh().lang == lang
    assert [h.text for h in fresh().fired] == [h.text for h in v.fired]
    assert fresh().model_dump_json() == ref.model_dump_json() == v.model_dump_json()
    assert fresh().model_dump() == ref.model_dump()
    assert fresh().model_dump(include={"reasons": {0}, "fired": {0: {"text"}}}) == ref.model_dump(
        include={"reasons": {0}, "fired": {0: {"text"}}}
    )
    assert repr(fresh()) == repr(ref) and str(fresh()) == str(ref)
    assert fresh() == ref and ref == fresh() and fresh() == v and (fresh() != ref) is False
    assert dict(fresh()) == dict(ref) and dict(fresh())["reasons"] == ref.reasons
    assert pickle.dumps(fresh()) == pickle.dumps(ref)  # the same bytes: texts written first
    assert pickle.loads(pickle.dumps(fresh())) == ref
    for c in (copy.copy(fresh()), fresh().model_copy(update={"grade": 9})):
        assert "reasons" not in _unwritten(c) and c.reasons == ref.reasons and c.fired == ref.fired
    assert not _unwritten(copy.deepcopy(fresh())) and copy.deepcopy(fresh()) == ref
    r = fresh()
    assert copy.copy(r).reasons is r.reasons  # a shallow copy shares its lists, as before
    assert fresh().explain("en") == ref.explain("en") and fresh().explain("fr") == ref.explain("fr")
    other = "fr" if lang == "en" else "en"
    assert fresh().in_lang(other).model_dump_json() == ref.in_lang(other).model_dump_json()  # type: ignore[arg-type]
    assert fresh().in_lang(other).model_fields_set == ref.in_lang(other).model_fields_set  # type: ignore[arg-type]
    for h, hr in zip(fresh().fired, ref.fired, strict=True):
        assert h.model_dump_json() == hr.model_dump_json()
    for h, hr in zip(fresh().fired, ref.fired, strict=True):
        assert h == hr and repr(h) == repr(hr) and dict(h) == dict(hr)
    for h, hr in zip(fresh().fired, ref.fired, strict=True):
        assert pickle.dumps(h) == pickle.dumps(hr) and copy.copy(h).__dict__ == hr.__dict__
    for h in fresh().fired:
        with pytest.raises(TypeError, match="unhashable type: 'dict'"):
            hash(h)  # its message is unhashable, as before; not the unwritten text


def test_a_hit_written_from_text_only_hashes_as_before() -> None:
    a = RuleHit(rule="r", domain="d", grade=1, text="t")
    b = RuleHit(rule="r", domain="d", grade=1, text="t")
    assert hash(a) == hash(b) and a == b and {a: 1}[b] == 1


def test_every_thread_reading_a_shared_result_gets_the_one_list_it_keeps() -> None:
    """The service's grading memo shares results between threads: the texts written first are
    the ones every reader gets (and keeps: a reader's list is the result's list)."""
    for _ in range(20):
        r = immunotox.grade(*CASES[4])
        start = threading.Barrier(6)
        got: list[tuple[list[str], list[str]]] = []

        def read(
            r: GradeResult = r,
            start: threading.Barrier = start,
            got: list[tuple[list[str], list[str]]] = got,
        ) -> None:
            start.wait()
            got.append((r.reasons, [h.text for h in r.fired]))

        ts = [threading.Thread(target=read) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(got) == 6 and all(reasons is r.reasons for reasons, _ in got)
        assert all(a is h.text for _, texts in got for a, h in zip(texts, r.fired, strict=True))


def test_a_text_field_set_or_deleted_before_it_is_read() -> None:
    r = immunotox.grade("astct2019:crs", CRS)
    r.reasons = ["set"]
    assert r.reasons == ["set"] and json.loads(r.model_dump_json())["reasons"] == ["set"]
    r = immunotox.grade("astct2019:crs", CRS)
    del r.reasons
    with pytest.raises(AttributeError, match="reasons"):
        _ = r.reasons
    with pytest.raises(AttributeError):
        _ = GradeResult.reasons  # a field, not a class attribute (as pydantic has it)
    assert not hasattr(RuleHit, "text")
    hit = immunotox.grade("astct2019:crs", CRS).fired[0]
    with pytest.raises(pydantic.ValidationError):
        hit.text = "frozen"  # type: ignore[misc]


def test_the_json_schema_of_a_result_and_a_hit_is_the_same_for_output() -> None:
    """``reasons`` and ``text`` are written out by a field serializer that reads them first:
    their output schema (OpenAPI's) is the declared one, ``list[str]`` and ``str``."""
    for cls in (GradeResult, RuleHit):
        assert cls.model_json_schema(mode="serialization") == cls.model_json_schema()
    props = RuleHit.model_json_schema(mode="serialization")["properties"]
    assert props["text"] == {
        "description": "The criterion and the finding that met it, in the result's language",
        "title": "Text",
        "type": "string",
    }
    reasons = GradeResult.model_json_schema(mode="serialization")["properties"]["reasons"]
    assert reasons == {"items": {"type": "string"}, "title": "Reasons", "type": "array"}


@pytest.mark.parametrize(("scale", "f"), CASES)
def test_in_lang_builds_what_model_copy_built(scale: str, f: dict[str, Any]) -> None:
    """``in_lang`` no longer calls ``model_copy`` (it would write the English texts first): what
    it builds is still that copy, down to the pickled bytes (fields, order, fields set)."""
    r = immunotox.grade(scale, f)
    fr = r.in_lang("fr")
    assert _unwritten(fr) and not _unwritten(_written(r))
    hits = [h.model_copy(update={"text": hf.text}) for h, hf in zip(r.fired, fr.fired, strict=True)]
    update = {"lang": "fr", "title": fr.title, "reasons": fr.reasons, "notes": fr.notes, "fired": hits}
    copied = r.model_copy(update=update)
    assert pickle.dumps(fr) == pickle.dumps(copied) and fr == copied
    assert fr.model_fields_set == copied.model_fields_set
