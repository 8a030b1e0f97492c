"""Property-based API testing with schemathesis against the service's own OpenAPI schema.

Every operation is called with generated requests (valid and invalid), authenticated as a
physician of unit A, on SQLite and on PostgreSQL. Checks: no 5xx, the status code is documented,
the content type is documented, and the body conforms to the documented schema. Bounded: a fixed
number of examples per operation, derandomized (same cases every run).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.service.conftest import Service, Template, make_service

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api(template: Template, tmp_path: Path) -> Iterator[Service]:
    yield from make_service(template, tmp_path)


@pytest.mark.slow
def test_every_operation_conforms_and_never_fails_with_5xx(api: Service) -> None:
    app = api.client.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # logout revokes the token the other calls use: it is tested on its own elsewhere
    operations = [
        op for op in (r.ok() for r in schema.get_all_operations()) if not op.path.endswith("/logout")
    ]
    assert len(operations) >= 25
    headers = api.h("doc_a")
    # a known patient id often enough for the path to reach real records, not only 404s
    known = st.sampled_from(["P-A1", "P-A2", "P-B1"])
    # and a real time: generated date-times shrink towards 0001-01-01, a placeholder the
    # service refuses (plausible window), so without this no write would ever be stored
    now = api.clock.now().isoformat()

    def plausible_times(body: Any) -> None:
        if isinstance(body, dict):
            if isinstance(body.get("time"), str):
                body["time"] = now
            for v in body.values():
                plausible_times(v)
        elif isinstance(body, list):
            for v in body:
                plausible_times(v)

    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()

    def check_operation(op: Any) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(), pid=known, use_known=st.booleans(), use_now=st.booleans())
        def run(case: Any, pid: str, use_known: bool, use_now: bool) -> None:
            if use_known and case.path_parameters and "patient_id" in case.path_parameters:
                case.path_parameters["patient_id"] = pid
            if use_now:
                plausible_times(case.body)
            resp = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses[(op.method.upper(), resp.status_code)] += 1

        run()

    for op in operations:
        try:
            check_operation(op)
        except Exception as exc:  # collect every failing operation, not only the first
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:600]}")
    assert failures == [], "\n\n".join(failures[:5])
    # the generated requests reached real records and stored data, not only refusals
    assert statuses[("GET", 200)] > 20 and statuses[("POST", 201)] > 0, statuses


# ----------------------------------------------------------------------------- a served process
# What issue 22 asks of the document, run as a client would: the schemathesis command line against
# `immunotox serve` on a fresh database, every check but positive-data acceptance (schema-valid
# requests may still break the rules listed in each operation, answered with a 422 naming the
# field). Logout and password change end the run's own session: they are left out. Bounded for
# `make test`: the coverage phase (boundary values, unsupported methods, missing headers) on every
# operation but the two per-code observation writes, whose ~10,000 coverage cases take minutes
# (their full run is the command of docs/service.md); fuzzing and stateful phases on every
# operation.
LIVE_EXAMPLES = 10
PER_CODE_WRITES = (
    "post_observation_api_v1_patients__patient_id__observations_post",
    "post_batch_api_v1_observations_batch_post",
)


def _schemathesis(base: str, token: str, cwd: Path, *args: str) -> None:
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--exclude-path-regex",
        "/auth/(logout|password)$",
        "-H",
        f"Authorization: Bearer {token}",
        "--seed",
        "22",
        "--workers",
        "1",
        "--no-color",
        *args,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=cwd)  # its cache there
    summary = run.stdout[-6000:]
    last = [line for line in run.stdout.splitlines() if line.strip()][-1]
    assert run.returncode == 0, summary
    assert re.search(r"\d+ (failure|error)s?\b", last) is None and "Failures:" not in run.stdout, summary
    assert re.search(r"(No issues found|\d+ warnings?) in [\d.]+s", last), summary
    assert re.search(r"\d+ generated, \d+ passed", run.stdout), summary


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_nothing_against_a_served_process(tmp_path: Path) -> None:
    from tests.service.conftest import seed_template
    from tests.service.test_service_process import server

    url = f"sqlite:///{tmp_path / 'live.db'}"
    token = seed_template(url)["doc_a"]
    with server(url) as (_proc, base):
        skip = [arg for op in PER_CODE_WRITES for arg in ("--exclude-operation-id", op)]
        _schemathesis(base, token, tmp_path, "--phases", "coverage", *skip)
        _schemathesis(
            base, token, tmp_path, "--phases", "fuzzing,stateful", "--max-examples", str(LIVE_EXAMPLES)
        )
