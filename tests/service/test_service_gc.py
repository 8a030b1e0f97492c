"""The served process keeps its start-up objects out of the collector's full passes (issue 19:
a full collection over them stopped every request of the mixed phase for 150-175 ms), and runs
its young collections less often (each one promoted the requests in flight, and the promotions
set off a full collection every second or so)."""

from __future__ import annotations

import gc
import weakref
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
    thresholds = gc.get_threshold()
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
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_the_served_collector_still_frees_cycles_on_its_own() -> None:
    """With the served process's young threshold, a cycle that becomes garbage is freed by the
    automatic collector (no explicit ``gc.collect``) within that many allocations."""
    thresholds = gc.get_threshold()
    try:
        service_app.freeze_startup_heap()
        assert gc.get_threshold() == (service_app.YOUNG_THRESHOLD, *thresholds[1:])
        node = _Node()
        gone = weakref.ref(node)
        del node
        assert gone() is not None  # not freed by reference counting
        keep = [[] for _ in range(2 * service_app.YOUNG_THRESHOLD)]  # allocations, no collect()
        assert gone() is None
        del keep
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


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
