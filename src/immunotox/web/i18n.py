"""Languages of the web UI: gettext catalogues (Babel), the request's language, local formats.

* Every UI string goes through :func:`gettext` (``_``) / :func:`ngettext`; module-level labels are
  marked with :func:`N_` and translated when shown. Catalogues live in ``web/locale``
  (``messages.pot``; ``fr`` and ``en`` ``.po`` and compiled ``.mo``); French is the default.
* The language of a request is held in a context variable set by :func:`use` around rendering,
  so templates and Python helpers read the same one (sync routes run in a worker thread each).
* Dates and numbers are formatted by Babel in the language's conventions, in the display time
  zone of the ward (``IMMUNOTOX_WEB_TIMEZONE``, default ``Europe/Paris``); the database keeps UTC.
* Clinical texts are not in these catalogues: they come in both languages from the rule, code,
  pathway and guideline data (``text`` / ``text_fr``, ``Text(fr, en)``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import os
import zoneinfo
from collections.abc import Iterator
from importlib import resources
from typing import Literal

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import NullTranslations, Translations

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")
DEFAULT_LANG: Lang = "fr"
LANG_NAMES: dict[Lang, str] = {"fr": "Français", "en": "English"}
DOMAIN = "messages"
TIMEZONE_ENV = "IMMUNOTOX_WEB_TIMEZONE"
DEFAULT_TIMEZONE = "Europe/Paris"

_current: contextvars.ContextVar[Lang] = contextvars.ContextVar("immunotox_web_lang", default=DEFAULT_LANG)


def locale_dir() -> str:
    """Filesystem path of the packaged catalogues (``web/locale``)."""
    return str(resources.files("immunotox.web").joinpath("locale"))


@functools.cache
def translations(lang: Lang) -> NullTranslations:
    """The compiled catalogue of ``lang`` (English falls back to the msgids)."""
    loaded = Translations.load(locale_dir(), [lang], DOMAIN)
    return loaded


def check_lang(value: str | None) -> Lang | None:
    """``value`` if it is a supported language code, else None."""
    if value in LANGS:
        return value
    return None


def current() -> Lang:
    """The language of the request being handled."""
    return _current.get()


def activate(lang: Lang) -> None:
    """Make ``lang`` current for the rest of this context (a sync route's own worker context)."""
    _current.set(lang)


@contextlib.contextmanager
def use(lang: Lang) -> Iterator[None]:
    """Run the block with ``lang`` as the current language."""
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` translated into the current language."""
    return translations(current()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, translated into the current language."""
    return translations(current()).ungettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now (translate when shown)."""
    return message


# ----------------------------------------------------------------------------- formats
@functools.cache
def display_timezone() -> zoneinfo.ZoneInfo:
    """The ward's time zone for display and for times typed in forms (UTC if unknown)."""
    name = os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local(t: dt.datetime) -> dt.datetime:
    """``t`` (aware, UTC) in the display time zone."""
    return t.astimezone(display_timezone())


def fmt_datetime(t: dt.datetime | None) -> str:
    """Day, month and time, e.g. ``10 mars, 13:05`` / ``Mar 10, 1:05 PM``."""
    if t is None:
        return "—"
    lang = current()
    tz = display_timezone()
    day = babel_dates.format_skeleton("MMMd", t, tzinfo=tz, locale=lang)
    return f"{day}, {babel_dates.format_time(t, 'short', tzinfo=tz, locale=lang)}"


def fmt_time(t: dt.datetime | None) -> str:
    """Time of day, e.g. ``13:05`` / ``1:05 PM``."""
    if t is None:
        return "—"
    return babel_dates.format_time(t, "short", tzinfo=display_timezone(), locale=current())


def fmt_date(d: dt.date | dt.datetime | None) -> str:
    """A date, e.g. ``10 mars 2026`` / ``March 10, 2026``."""
    if d is None:
        return "—"
    if isinstance(d, dt.datetime):
        d = local(d).date()
    return babel_dates.format_date(d, "long", locale=current())


def fmt_short_date(t: dt.datetime) -> str:
    """Weekday, day and month, for chart axes: ``mar. 10 mars`` / ``Tue, Mar 10``."""
    return babel_dates.format_skeleton("MMMEd", t, tzinfo=display_timezone(), locale=current())


def fmt_duration(delta: dt.timedelta) -> str:
    """A duration, narrow: ``3h``, ``45min``, ``2j`` / ``2d``."""
    return babel_dates.format_timedelta(delta, format="narrow", threshold=1.5, locale=current())


def fmt_ago(t: dt.datetime | None, now: dt.datetime) -> str:
    """How long ago ``t`` was, to the minute: ``il y a 3 h 20`` / ``3 h 20 ago`` (``jamais`` if None)."""
    if t is None:
        return gettext("never")
    minutes = int((now - t).total_seconds() // 60)
    if minutes < 0:
        return gettext("in %(m)d min") % {"m": -minutes}
    if minutes < 60:
        return gettext("%(m)d min ago") % {"m": minutes}
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return gettext("%(h)d h %(m)02d ago") % {"h": hours, "m": rest}
    return gettext("%(d)d days ago") % {"d": hours // 24}


def fmt_number(x: float | int | None, digits: int = 1) -> str:
    """A number with up to ``digits`` decimals in the language's format (``38,6`` / ``38.6``)."""
    if x is None:
        return "—"
    pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
    return babel_numbers.format_decimal(x, format=pattern, locale=current())


def fmt_input_datetime(t: dt.datetime) -> str:
    """``t`` as the value of an ``<input type="datetime-local">`` (local time, minutes)."""
    return local(t).strftime("%Y-%m-%dT%H:%M")


def parse_input_datetime(text: str) -> dt.datetime:
    """A ``datetime-local`` value (ward time) as an aware UTC datetime; ValueError if malformed."""
    naive = dt.datetime.fromisoformat(text.strip())
    if naive.tzinfo is not None:
        return naive.astimezone(dt.UTC)
    return naive.replace(tzinfo=display_timezone()).astimezone(dt.UTC)
