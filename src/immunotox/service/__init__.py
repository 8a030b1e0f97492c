"""The immunotox monitoring service: FastAPI + SQLAlchemy, SQLite by default, PostgreSQL in production.

Map of the package:

=====================  =========================================================================
``config``             settings from ``IMMUNOTOX_*`` environment variables
``db``                 engines (SQLite WAL / PostgreSQL), sessions, Alembic ``migrate``, the clock
``models``             tables: append-only event stream, derived grades/episodes/alerts, audit
``migrations/``        Alembic environment and versions (shipped in the package)
``codes``              the contract codes the service accepts, checked and converted (UCUM)
``auth``               argon2 passwords, tokens, sessions + CSRF, who may read/write what
``audit``              the append-only audit trail
``ingest``             check -> append -> regrade -> alert, in one transaction
``grading``            stored events -> findings (validity windows) -> grades, episodes
``alerts``             alert rules, deduplication, acknowledgement, escalation, sweeps
``transitions``        the alerts of grade transitions, with their recommended management
``selfreport``         triage of a patient's self-report
``recommend``          recommendations from ``immunotox.management`` (when installed)
``fhir``               FHIR R4 import/export (fhir.resources R4B models)
``schemas``            API models; ``problems``: RFC 7807 errors; ``deps``: FastAPI dependencies
``routes/``            the HTTP endpoints; ``app``: the service's FastAPI app (API, background tasks)
``demo``               the simulated ward of ``immunotox serve --demo``
``pgtest``             a throw-away PostgreSQL server for tests and benchmarks
=====================  =========================================================================

The application with the web UI is assembled above this package, by
:func:`immunotox.app.create_app`.
"""

from .config import Settings

__all__ = ["Settings"]
