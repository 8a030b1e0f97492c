"""Shared fixtures for the immunotox test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

# No wall-clock deadlines: performance is measured by benchmarks, never by timed assertions,
# and the first call of a test may pay one-off costs (pint registry, rule tables).
settings.register_profile(
    "immunotox", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("immunotox")


def _cli_path() -> list[str]:
    exe = Path(sys.executable).parent / "immunotox"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "immunotox"]


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``immunotox`` command in a subprocess; returns the completed process."""

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
        return subprocess.run(
            [*_cli_path(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    return run
