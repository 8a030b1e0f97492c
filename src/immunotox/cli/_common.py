"""Helpers shared by the CLI commands: JSON input, one-line errors with exit code 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

from ..errors import FindingError, ImmunotoxError
from ..messages import Lang, Msg, error, error_message, exc_message, parse_lang, render

EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def refuse(lang: Lang, message: Msg) -> NoReturn:
    """Exit 2 with ``message`` (an option missing, or given with one it excludes) in ``lang``."""
    fail(render(message, lang))


def refuse_value(lang: Lang, option: str, value: Any, problem: Msg) -> NoReturn:
    """Exit 2 naming ``option``, its ``value`` as given and ``problem`` (what was expected) in ``lang``."""
    fail(error_message(FindingError(option, value, problem), lang))


@contextmanager
def clean_errors(lang: Lang = "en") -> Iterator[None]:
    """Turn immunotox errors into a one-line message in ``lang`` and exit code 2 (never a
    traceback); a refused input names its field, its value and what was expected."""
    try:
        yield
    except FindingError as exc:
        fail(error_message(exc, lang))
    except ImmunotoxError as exc:
        fail(exc_message(exc, lang))


LANG_HELP = "Language of the reasons, notes and explanation: en or fr"


def lang_option(value: str) -> Lang:
    """The ``--lang`` value as a language code (exit 2 naming the option otherwise)."""
    with clean_errors():
        return parse_lang(value, "--lang")


def read_json_option(raw: str, option: str, lang: Lang = "en") -> Any:
    """Parse a JSON option given inline, as ``@path`` to a file, or ``-`` for stdin (a refusal
    in ``lang``; the system's and the JSON parser's own words are quoted as given)."""
    text = raw
    with clean_errors(lang):
        if raw == "-":
            text = sys.stdin.read()
        elif raw.startswith("@"):
            path = Path(raw[1:])
            try:
                text = path.read_text("utf-8")
            except OSError as exc:
                raise FindingError(option, raw, error("cli.cannot_read", error=str(exc.strerror))) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            problem = error("cli.not_json", msg=exc.msg, line=exc.lineno, col=exc.colno)
            raise FindingError(option, _clip(text), problem) from None


def print_json(obj: Any) -> None:
    """Print ``obj`` as one JSON object on stdout."""
    typer.echo(json.dumps(obj, ensure_ascii=False))


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


Register = Callable[[typer.Typer], None]
