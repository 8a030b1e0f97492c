"""The served process keeps its start-up objects out of the collector's full passes (issue 19:
a full collection over them stopped every request of the mixed phase for 150-175 ms)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import immunotox.app  # noqa: F401  (the objects a served process builds before its first request)
from immunotox.cli.main import app as cli
from immunotox.service import app as service_app


def test_freeze_startup_heap_leaves_the_startup_objects_out_of_full_collections() -> None:
    gc.collect()  # in a long test session the heap also holds earlier tests' garbage
    tracked = len(gc.get_objects())
    assert tracked > 50_000  # modules, rule tables, unit registry, schemas
    try:
        service_app.freeze_startup_heap()
        # a full pass now traverses none of them: they are in the permanent generation
        assert gc.get_freeze_count() >= tracked * 0.9
        assert len(gc.get_objects()) < tracked * 0.01
        garbage: list[Any] = []
        garbage.append(garbage)  # a cycle made after the freeze is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_serve_freezes_the_startup_heap_before_the_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    order: list[str] = []
    monkeypatch.setattr(service_app, "freeze_startup_heap", lambda: order.append("freeze"))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: order.append("run"))
    r = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}", "--no-access-log"])
    assert r.exit_code == 0, r.output
    assert order == ["freeze", "run"]
