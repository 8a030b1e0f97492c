"""Shared fixtures for the immunotox test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
