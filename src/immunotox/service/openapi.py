"""The OpenAPI document, telling what the server enforces.

FastAPI writes the document from the routes and the pydantic models; :func:`document` then adds
what those cannot say by themselves, each from the place that decides it:

* **no NUL** in any free string of a request (a pattern), as the input models refuse, and the
  integer bounds of a request exact (FastAPI writes them as floats: ``2**63 - 1`` became ``2**63``);
* **per-code schemas** from the observation vocabulary (``data/observations.toml`` through
  :mod:`immunotox.vocabulary`): an observation body is ``oneOf`` one schema per code, chosen by
  the ``code`` property (a ``discriminator`` whose mapping lists every canonical code and LOINC
  alias), each with its value type, its tokens (aliases included), its possible range in its
  canonical UCUM unit, whether it takes a unit, an ``end_time`` (interval codes only) and a dose
  (administrations only); an administration body likewise, per administration code;
* **problem responses every operation can give**: 400 when it reads a body (not UTF-8, not
  JSON: the problem names ``body``), 401 when it needs credentials (with the ``bearer`` security
  scheme), 422 when it reads a body or parameters — all ``application/problem+json``
  (:class:`~immunotox.service.problems.Problem`), never FastAPI's own validation error;
* **rules JSON Schema cannot express** (a plausible time, a correction of an event of the same
  patient, ``ref_low ≤ ref_high``...): a route names them with :func:`rules`; they are listed at
  the end of the operation's description and in its ``x-rules`` extension (field and text), and
  the server answers their violation with a 422 naming the field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .. import plausibility
from ..vocabulary import CodeSpec
from ..vocabulary import vocabulary as observation_vocabulary
from .deps import get_principal
from .methods import flat_routes
from .problems import MEDIA_TYPE, Problem, ProblemItem
from .schemas import MAX_ID

REF = "#/components/schemas/"
NUMBER = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"
"""A number written as a string, as the observation contract's ``value`` column carries it."""
UNITLESS = r"^\s*(1|\{[^}]*\})?\s*$"
OPEN = r"^\s*[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\s*$"
NO_NUL = "^[^\u0000]*$"
SECURITY = {"bearer": {"type": "http", "scheme": "bearer", "description": "POST /api/v1/auth/token"}}
STATUS_TEXT = {
    400: "Unreadable body: not UTF-8 or not JSON (the problem names `body`)",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role or units do not allow it",
    404: "No such record, or one the caller may not see",
    405: "Method not allowed (`Allow` lists the methods of the path)",
    409: "Conflicts with the stored state",
    422: "Invalid input: every problem names its field (`errors[].field`, `errors[].pointer`)",
    429: "Too many failed logins: wait `Retry-After` seconds",
    503: "The database is not ready",
}


@dataclass(frozen=True)
class Rule:
    """A check JSON Schema cannot express: the field a refusal names, and what is checked."""

    field: str
    text: str


def _time_rule(field: str) -> Rule:
    return Rule(
        field,
        f"`{field}` lies in the plausible window {plausibility.time_window_text()} and is not later "
        "than the service time plus IMMUNOTOX_MAX_FUTURE_MINUTES; a time without an offset is UTC",
    )


RULES: dict[str, Rule] = {
    "time": _time_rule("time"),
    "end_time": Rule("end_time", "`end_time` is not before `time` and not in the future"),
    "unit": Rule(
        "unit",
        "a quantity in another UCUM unit than its canonical one is converted first; the unit must "
        "convert to the canonical unit and the converted value lie in the code's range (a number "
        "written as a string is checked the same way)",
    ),
    "dose": Rule("dose", "`dose` and `dose_unit` come together; `dose_unit` is a known UCUM unit"),
    "supersedes": Rule(
        "supersedes",
        "a correction names an existing event of the same patient and the same code that is not "
        "already superseded; `status: entered_in_error` needs `supersedes`",
    ),
    "ref_range": Rule(
        "ref_low",
        "`ref_low < ref_high` when both are given; a reference interval needs the result's unit "
        "(its limits are in that unit and converted with the value)",
    ),
    "stop": Rule(
        "event_id",
        "names a running `vasopressor` or `oxygen` row of this patient: no `end_time` yet, not "
        "superseded by a later version (another patient's event is a 404)",
    ),
    "assessment": Rule(
        "ice_score",
        "`ice_score` equals the sum of the five `items` when all are given; an `ice` assessment "
        "needs its items or `ice_score`, a `capd` one `capd_score`, a `neuro` one at least one sign",
    ),
    "self_report": Rule(
        "symptoms",
        "each symptom is offered for the patient's therapy class, at most once; a report has a "
        "temperature, a symptom or a note",
    ),
    "patient": Rule(
        "product",
        "`unit_id` names an existing unit; `product` is a known product of `therapy_class`; "
        "`birth_date` lies in 1900–2200 and gives an age of 0–120 years; `weight_kg` is "
        "plausible; `infusion_at` is at most a year ahead; a taken `id` is a 409",
    ),
    "user": Rule(
        "unit_ids",
        "a patient account names an existing patient record and no unit; a staff account works in "
        "at least one existing unit; the password has at least 8 characters (12 for staff), is not "
        "a common password nor the user name; an admin cannot demote or deactivate their own "
        "account, a patient account never becomes a staff one; a taken user name is a 409",
    ),
    "fhir_import": Rule(
        "bundle",
        "every entry is a valid FHIR R4 resource the service reads (the problem names the entry); "
        "`unit_id` names an existing unit",
    ),
    "fhir_id": Rule("path.patient_id", "the patient id is a FHIR id (letters, digits, '-', '.')"),
    "alert_state": Rule(
        "alert_id", "only an open alert is acknowledged and an unresolved one resolved (else 409)"
    ),
    "idempotency": Rule(
        "header.Idempotency-Key",
        "a key already used by this user for a different request (another path or body) is refused",
    ),
}


def rules(*names: str) -> dict[str, Any]:
    """``openapi_extra`` naming the :data:`RULES` a route checks beyond its schema."""
    return {"x-rules": [{"field": RULES[n].field, "rule": n, "text": RULES[n].text} for n in names]}


def install(app: FastAPI) -> None:
    """Serve :func:`document` as the app's ``/openapi.json`` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (see the module docstring)."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    components["securitySchemes"] = SECURITY
    for name, model in (("Problem", Problem), ("ProblemItem", ProblemItem)):
        schemas[name] = model.model_json_schema(ref_template=REF + "{model}")
        schemas[name].pop("$defs", None)
    for route in flat_routes(app.routes):
        if not (isinstance(getattr(route, "original_route", route), APIRoute) and route.include_in_schema):
            continue
        for method in route.methods:
            op = doc["paths"][route.path_format][method.lower()]
            secured = _needs(route.dependant, get_principal)
            if secured:
                op["security"] = [{"bearer": []}]
            _problems(op, secured)
            _describe_rules(op)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    vocab = observation_vocabulary().all_codes.values()
    for name in ("ObservationIn", "BatchObservationIn"):
        if name in schemas:
            _per_code(schemas, name, vocab)
    if "AdministrationIn" in schemas:
        _per_code(schemas, "AdministrationIn", [s for s in vocab if s.resource == "administration"])
    _no_nul(doc, schemas)
    return doc


def _no_nul(doc: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Every free string a request carries refuses NUL (no database text column stores it; the
    input models and the URL check refuse it per field): declared as a pattern on each string of
    a request body or parameter that has neither a pattern nor an enumeration."""
    seen: set[str] = set()
    todo: list[Any] = []
    for item in doc["paths"].values():
        for op in item.values():
            todo += [m["schema"] for m in op.get("requestBody", {}).get("content", {}).values()]
            todo += [param["schema"] for param in op.get("parameters", [])]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF) and ref not in seen:
            seen.add(ref)
            todo.append(schemas.get(ref[len(REF) :]))
        if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(node):
            node["pattern"] = NO_NUL
        if node.get("type") == "integer":  # FastAPI writes bounds as floats: 2**63 - 1 became 2**63
            for bound in ("minimum", "maximum"):
                if isinstance(node.get(bound), float):
                    node[bound] = max(-MAX_ID - 1, min(MAX_ID, int(node[bound])))
        todo.extend(v for k, v in node.items() if k not in ("enum", "const", "discriminator"))


def _needs(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _needs(d, call) for d in dependant.dependencies)


def problem_response(status: int) -> dict[str, Any]:
    """One problem response of the document."""
    return {
        "description": STATUS_TEXT.get(status, "Problem"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF + "Problem"}}},
    }


def _problems(op: dict[str, Any], secured: bool) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    wanted = set()
    if "requestBody" in op:
        wanted |= {400, 422}
    if op.get("parameters"):
        wanted.add(422)
    if secured:
        wanted.add(401)
    for key in list(responses):
        if key.isdigit() and int(key) >= 400:
            wanted.add(int(key))
            del responses[key]
    for status in sorted(wanted):
        responses[str(status)] = problem_response(status)


def _describe_rules(op: dict[str, Any]) -> None:
    listed = op.get("x-rules")
    if not listed:
        return
    lines = "\n".join(f"- `{r['field']}`: {r['text']}" for r in listed)
    text = "Checked beyond this schema (a refusal is a 422 naming the field):\n\n" + lines
    op["description"] = f"{op['description']}\n\n{text}" if op.get("description") else text


# ----------------------------------------------------------------------------- per-code schemas
def _per_code(schemas: dict[str, Any], name: str, specs: Iterable[CodeSpec]) -> None:
    """Replace ``schemas[name]`` by ``oneOf`` one schema per code, discriminated by ``code``."""
    base = schemas[name]
    mapping: dict[str, str] = {}
    branches = []
    for spec in specs:
        key = f"{name}.{spec.name}"
        schemas[key] = _code_schema(base, spec)
        for code in (spec.name, *spec.loinc):
            mapping[code] = REF + key
        branches.append({"$ref": REF + key})
    schemas[name] = {
        "title": base.get("title", name),
        "description": (base.get("description", "") + " One schema per code (`code` chooses it).").strip(),
        "oneOf": branches,
        "discriminator": {"propertyName": "code", "mapping": mapping},
    }


def _code_schema(base: dict[str, Any], spec: CodeSpec) -> dict[str, Any]:
    props: dict[str, Any] = copy.deepcopy(base["properties"])
    codes = [spec.name, *spec.loinc]
    props["code"] = {
        "type": "string",
        "enum": codes,
        "description": f"{spec.text} (canonical code {spec.name!r}"
        + (f"; LOINC {', '.join(spec.loinc)})" if spec.loinc else ")"),
    }
    value, unit = _value_and_unit(spec)
    if "value" in props:
        props["value"] = value
    if "unit" in props:
        props["unit"] = unit
    if "end_time" in props and not spec.interval:
        props["end_time"] = {"type": "null", "description": f"{spec.name} is not an interval event"}
    for bound in ("ref_low", "ref_high"):  # a laboratory result's reference interval
        if bound in props and not (spec.kind == "quantity" and spec.category == "laboratory"):
            props[bound] = {"type": "null", "description": f"{spec.name} is not a laboratory result"}
        elif bound in props:
            props[bound] = {
                "anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}],
                "description": props[bound].get("description", ""),
            }
    if "o2_flow_l_min" in props and spec.name != "oxygen":
        props["o2_flow_l_min"] = {"type": "null", "description": "oxygen only"}
    if "dose" in props and spec.resource != "administration":
        props["dose"] = {"type": "null", "description": f"{spec.name} is not an administration"}
    elif "dose" in props:
        props["dose"] = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]}
    required = list(base.get("required", []))
    if spec.kind == "quantity" and "unit" in props:
        required.append("unit")  # a quantity's unit is never guessed
    out: dict[str, Any] = {
        "type": "object",
        "title": f"{base.get('title', '')}: {spec.name}".strip(": "),
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    if spec.kind == "quantity" and spec.range is not None:
        # the range is the canonical unit's: in another unit it is checked after conversion (a rule)
        lo, hi = spec.range
        out["anyOf"] = [
            {
                "properties": {
                    "unit": {"const": spec.unit},
                    "value": {
                        "anyOf": [{"type": "number", "minimum": lo, "maximum": hi}, {"type": "string"}]
                    },
                }
            },
            {"properties": {"unit": {"not": {"const": spec.unit}}}},
        ]
    return out


def _value_and_unit(spec: CodeSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    no_unit = {
        "anyOf": [{"type": "string", "pattern": UNITLESS, "maxLength": 32}, {"type": "null"}],
        "description": "unitless: empty, '1' or a UCUM annotation such as '{score}'",
    }
    if spec.kind == "quantity":
        value = {
            "anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER, "maxLength": 64}],
            "description": f"a number in `unit`; possible range {_range(spec)} {spec.unit}",
        }
        unit = {
            "type": "string",
            "minLength": 1,
            "maxLength": 32,
            "description": f"UCUM code, canonical {spec.unit!r}; another unit of its dimension is converted",
        }
        return value, unit
    if spec.kind == "integer":
        lo, hi = spec.range or (None, None)
        number = {"type": "integer", **({"minimum": lo, "maximum": hi} if lo is not None else {})}
        value = {
            "anyOf": [number, {"type": "string", "pattern": NUMBER, "maxLength": 64}],
            "description": f"a whole number, {_range(spec)}",
        }
        return value, no_unit
    if spec.kind == "open":
        free = {"type": "string", "pattern": OPEN, "description": "a token (lower-cased when stored)"}
        return free, no_unit
    words = [*spec.tokens, *spec.aliases]
    token: dict[str, Any] = {"type": "string", "enum": words}
    if spec.kind == "bool":
        return {"anyOf": [{"type": "boolean"}, token], "description": "true or false"}, no_unit
    token["description"] = f"one of {', '.join(spec.tokens)} (mildest first)" + (
        f"; aliases {', '.join(spec.aliases)}" if spec.aliases else ""
    )
    return token, no_unit


def _range(spec: CodeSpec) -> str:
    if spec.range is None:
        return "any"
    lo, hi = spec.range
    return f"{lo:g}–{hi:g}"
