"""Service settings, read from the environment (``IMMUNOTOX_*``) or given explicitly.

Every setting has a safe default so that ``immunotox serve`` works with no configuration:
an SQLite file ``./immunotox.db`` next to where the command runs.

Network and login throttling (``docs/security.md``):

* ``IMMUNOTOX_TRUSTED_PROXIES`` (none): comma-separated addresses or networks (``10.0.0.0/8``) of
  the reverse proxies whose ``X-Forwarded-For`` names the client; from any other peer the header
  is ignored. ``IMMUNOTOX_SECURE_COOKIES=on`` also sends HSTS.
* ``IMMUNOTOX_LOGIN_FREE_FAILURES`` (10): failed logins of one user name from one address before
  the next attempts must wait (429 with ``Retry-After``);
  ``IMMUNOTOX_LOGIN_ADDRESS_FREE_FAILURES`` (100): the same for one address, any user names.
* ``IMMUNOTOX_LOGIN_DELAY_SECONDS`` (60): the first wait, doubled by each further failure up to
  ``IMMUNOTOX_LOGIN_MAX_DELAY_SECONDS`` (900); failures are forgotten after
  ``IMMUNOTOX_LOGIN_FORGET_HOURS`` (24) without one, or at a successful login.

=================================  ===============================  ================================
variable                           default                          meaning
=================================  ===============================  ================================
``IMMUNOTOX_DATABASE_URL``         ``sqlite:///./immunotox.db``     SQLAlchemy URL; PostgreSQL is
                                                                    ``postgresql+psycopg://…``
``IMMUNOTOX_GRADING``              ``on``                           ``off`` stores data without
                                                                    regrading or alerting (the
                                                                    benchmark floor only)
``IMMUNOTOX_SQLITE_SYNCHRONOUS``   ``FULL``                         SQLite ``PRAGMA synchronous``
``IMMUNOTOX_TOKEN_TTL_HOURS``      ``12``                           lifetime of an API token
``IMMUNOTOX_ESCALATION_MINUTES``   ``30``                           an open alert escalates after
                                                                    this delay, then again after
                                                                    each further delay (max level 2)
``IMMUNOTOX_SWEEP_SECONDS``        ``30``                           period of the background sweep
                                                                    (missing assessments,
                                                                    escalation); 0 disables it
``IMMUNOTOX_REGRADE_SECONDS``      ``2``                            period of the background
                                                                    regrader of batch ingest; 0:
                                                                    batches are regraded in the
                                                                    request, like single writes
``IMMUNOTOX_REGRADER``            ``process``                      where ``immunotox serve`` runs
                                                                    the regrader and the sweeps:
                                                                    ``process`` (a process of its
                                                                    own beside the server) or
                                                                    ``inline`` (tasks of the server
                                                                    process); docs/service.md
``IMMUNOTOX_WORKERS``              ``1``                            server processes of ``immunotox
                                                                    serve`` (``--workers``); above 1
                                                                    on PostgreSQL only (SQLite
                                                                    serialises writes); the
                                                                    regrader stays one process;
                                                                    docs/service.md
``IMMUNOTOX_MAX_FUTURE_MINUTES``   ``5``                            tolerated clock skew: an event
                                                                    dated later than now + this is
                                                                    refused
``IMMUNOTOX_ICE_OVERDUE_HOURS``    ``12``                           no ICE for this long during the
                                                                    monitoring days raises an alert
``IMMUNOTOX_ICE_MONITORING_DAYS``  ``7``                            days after a CAR-T infusion
                                                                    during which ICE is expected
``IMMUNOTOX_SECURE_COOKIES``       ``off``                          mark session cookies ``Secure``
                                                                    (turn on behind HTTPS)
``IMMUNOTOX_JURISDICTION``         (none)                           whose product information
                                                                    applies: ``EU``, ``US`` or an
                                                                    ISO country (``FR`` -> EU);
                                                                    unset: label periods are not
                                                                    given (``make demo`` sets EU)
``IMMUNOTOX_REFERENCE_INTERVALS``  (none)                           a TOML file of the site's
                                                                    laboratory reference intervals
                                                                    (``[[interval]]`` entries, the
                                                                    grammar of
                                                                    ``data/reference_intervals.toml``)
                                                                    replacing the shipped defaults;
                                                                    checked at start-up
=================================  ===============================  ================================

The jurisdiction is never inferred from the interface language; an unknown value stops the
service at start-up naming the variable.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .. import labs
from ..errors import FindingError, RuleSpecError
from ..jurisdiction import Jurisdiction, optional_jurisdiction

DEFAULT_DATABASE_URL = "sqlite:///./immunotox.db"

REGRADER_MODES = ("process", "inline")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting given in the environment that cannot be read (names the variable)."""


def shown_url(url: str) -> str:
    """``url`` as it may be shown (console, logs, error messages): its password masked as
    ``***``. A PostgreSQL URL may hold the database password; never print it."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: mask whatever stands before an "@"
        return re.sub(r"//[^/]*@", "//***@", url)


@dataclass(frozen=True)
class Settings:
    """Settings of one service instance (immutable; build a new one with :meth:`with_`)."""

    database_url: str = DEFAULT_DATABASE_URL
    grading: bool = True
    sqlite_synchronous: str = "FULL"
    token_ttl_hours: float = 12.0
    trusted_proxies: str = ""
    login_free_failures: int = 10
    login_address_free_failures: int = 100
    login_delay_seconds: float = 60.0
    login_max_delay_seconds: float = 900.0
    login_forget_hours: float = 24.0
    escalation_minutes: float = 30.0
    sweep_seconds: float = 30.0
    regrade_seconds: float = 2.0
    regrader: str = "process"
    workers: int = 1
    max_future_minutes: float = 5.0
    ice_overdue_hours: float = 12.0
    ice_monitoring_days: float = 7.0
    secure_cookies: bool = False
    jurisdiction: Jurisdiction | None = None
    demo: bool = False
    reference_intervals: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``IMMUNOTOX_<NAME>`` variables; explicit ``overrides`` win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"IMMUNOTOX_{f.name.upper()}"
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(var, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("jurisdiction"), str):
            values["jurisdiction"] = _jurisdiction("IMMUNOTOX_JURISDICTION", values["jurisdiction"])
        settings = cls(**values)
        settings.check()
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and checked."""
        s = replace(self, **changes)
        s.check()
        return s

    def check(self) -> None:
        """Refuse impossible values, naming the variable."""
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise SettingsError(
                f"IMMUNOTOX_SQLITE_SYNCHRONOUS = {self.sqlite_synchronous!r}: "
                "expected OFF, NORMAL, FULL or EXTRA"
            )
        for name in ("token_ttl_hours", "escalation_minutes", "ice_overdue_hours", "ice_monitoring_days"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"IMMUNOTOX_{name.upper()} = {getattr(self, name)}: must be > 0")
        for name in ("sweep_seconds", "max_future_minutes", "regrade_seconds"):
            if getattr(self, name) < 0:
                raise SettingsError(f"IMMUNOTOX_{name.upper()} = {getattr(self, name)}: must be >= 0")
        for name in ("login_free_failures", "login_address_free_failures", "login_delay_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(f"IMMUNOTOX_{name.upper()} = {getattr(self, name)}: must be >= 1")
        if self.login_max_delay_seconds < self.login_delay_seconds or self.login_forget_hours <= 0:
            raise SettingsError(
                f"IMMUNOTOX_LOGIN_MAX_DELAY_SECONDS = {self.login_max_delay_seconds}, IMMUNOTOX_LOGIN_"
                f"FORGET_HOURS = {self.login_forget_hours}: the longest wait must be at least "
                "IMMUNOTOX_LOGIN_DELAY_SECONDS and failures must be forgotten after a positive time"
            )
        if self.regrader not in REGRADER_MODES:
            raise SettingsError(
                f"IMMUNOTOX_REGRADER = {self.regrader!r}: expected {', '.join(REGRADER_MODES)}"
            )
        if self.workers < 1:
            raise SettingsError(f"--workers / IMMUNOTOX_WORKERS = {self.workers}: must be >= 1")
        if self.workers > 1 and self.is_sqlite:
            raise SettingsError(
                f"--workers / IMMUNOTOX_WORKERS = {self.workers}: expected 1 on SQLite, whose writes "
                "take one lock in turn (several server processes only on PostgreSQL)"
            )
        if self.workers > 1 and self.regrader != "process":
            raise SettingsError(
                f"--workers / IMMUNOTOX_WORKERS = {self.workers}: expected 1 with IMMUNOTOX_REGRADER = "
                f"{self.regrader!r} (the regrader and the sweeps would run in every server process)"
            )
        self.trusted_networks  # noqa: B018 - refuses an unreadable IMMUNOTOX_TRUSTED_PROXIES now
        if self.reference_intervals:
            try:
                labs.load_site_intervals(self.reference_intervals)
            except RuleSpecError as exc:
                raise SettingsError(f"IMMUNOTOX_REFERENCE_INTERVALS: {exc}") from None
        if not self.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError(
                f"IMMUNOTOX_DATABASE_URL = {shown_url(self.database_url)!r}: only sqlite:/// and "
                "postgresql+psycopg:// URLs are supported"
            )
        if self.is_sqlite and (
            self.database_url.rstrip("/") in ("sqlite:", "sqlite:/")
            or any(m in self.database_url for m in (":memory:", "mode=memory"))
        ):
            raise SettingsError(
                f"IMMUNOTOX_DATABASE_URL = {shown_url(self.database_url)!r}: an in-memory SQLite "
                "database is not shared between the service's connections; give a file, e.g. sqlite:///./immunotox.db"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def regrader_process(self) -> bool:
        """Whether ``immunotox serve`` runs the regrader and the sweeps in a process of their own
        (only with a regrader at all: grading on, ``regrade_seconds`` > 0; or with several
        server processes, for the sweeps: they must run in one process only)."""
        return self.regrader == "process" and (
            (self.grading and self.regrade_seconds > 0) or self.workers > 1
        )

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        """The networks of ``IMMUNOTOX_TRUSTED_PROXIES`` (a bare address is a one-address network)."""
        return _networks(self.trusted_proxies)


def settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``IMMUNOTOX_*`` variables :meth:`Settings.from_env` reads back into the
    same settings: how ``immunotox serve`` hands its settings (the ``--db`` URL, which may hold a
    password, included: never on a command line) to its worker processes."""
    out: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, Jurisdiction):
            text = value.code
        else:
            text = "" if value is None else str(value)
        out[f"IMMUNOTOX_{f.name.upper()}"] = text
    return out


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(spec: str) -> tuple[IPNetwork, ...]:
    out: list[IPNetwork] = []
    for item in spec.split(","):
        if not item.strip():
            continue
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"IMMUNOTOX_TRUSTED_PROXIES = {spec!r}: {item.strip()!r} is not an address or a network "
                "(expected e.g. 10.0.0.5, 10.0.0.0/8 or fd00::/8, separated by commas)"
            ) from None
    return tuple(out)


def _jurisdiction(var: str, raw: str) -> Jurisdiction | None:
    try:
        return optional_jurisdiction(raw, var)
    except FindingError as exc:
        raise SettingsError(str(exc)) from None


def _parse(var: str, raw: str, typ: Any) -> Any:
    name = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    if name.startswith("Jurisdiction"):
        return _jurisdiction(var, raw)
    if name == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise SettingsError(f"{var} = {raw!r}: expected on/off")
    if name == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var} = {raw!r}: expected a whole number") from None
    if name == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{var} = {raw!r}: expected a number") from None
    return raw
