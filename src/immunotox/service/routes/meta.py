"""Health check and service metadata."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from ... import __version__
from ...messages import error as E
from .. import queue
from ..db import Database
from ..deps import ClockDep, CurrentUser, DbDep, SettingsDep
from ..grades import ENGINE, SCALES
from ..problems import problem, responses
from ..schemas import HealthOut, MetaOut

router = APIRouter(tags=["meta"])


def _revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None


@router.get("/health", response_model=HealthOut, responses=responses(503), summary="Liveness and database")
def health(db: DbDep) -> HealthOut:
    try:
        rev = _revision(db)
    except Exception as exc:  # the database is down or not migrated
        detail = E("http.database_not_ready", error=type(exc).__name__)
        raise problem(503, "Unavailable", detail, code="unavailable") from None
    return HealthOut(status="ok", database=db.dialect, migration=rev, regrade_queue=queue.pending(db))


@router.get("/api/v1/meta", response_model=MetaOut, responses=responses(401), summary="Service facts")
def meta(principal: CurrentUser, db: DbDep, settings: SettingsDep, clock: ClockDep) -> MetaOut:
    return MetaOut(
        name="immunotox",
        version=__version__,
        database=db.dialect,
        grading=settings.grading,
        grading_engine=ENGINE,
        scales=list(SCALES),
        now=clock.now(),
        demo=settings.demo,
    )
