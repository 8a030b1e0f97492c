"""A throw-away PostgreSQL server for tests and benchmarks (Debian's ``postgresql`` package).

:class:`PgServer` finds ``initdb``/``pg_ctl`` (on ``PATH``, else the newest
``/usr/lib/postgresql/*/bin``), creates a cluster in a fresh temporary directory, starts it on a
free loopback port with its Unix socket in that directory, creates databases on demand and
removes everything on :meth:`stop`. PostgreSQL refuses to run as root: when the current user is
root, the cluster directory is given to the ``postgres`` user (or ``nobody``) and the server
runs as that user through ``runuser``/``su``.

``durable=False`` (tests) turns off fsync for speed; benchmarks use ``durable=True``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PgUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_binary(name: str) -> str | None:
    """Path of a PostgreSQL server binary, or None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    """A private PostgreSQL cluster on 127.0.0.1:<free port>."""

    def __init__(self, *, durable: bool = False) -> None:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise PgUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                "/usr/lib/postgresql/*/bin; install Debian's 'postgresql' package"
            )
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.durable = durable
        self.base = Path(tempfile.mkdtemp(prefix="immunotox-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.run_as: str | None = None
        if os.geteuid() == 0:
            self.run_as = _unprivileged_user()
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.started = False

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = args
        if self.run_as is not None:
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", self.run_as, "--", *args]
            else:
                cmd = ["su", self.run_as, "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in args)]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=str(self.base)
        )

    def start(self) -> PgServer:
        r = self._run(
            [self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        opts = [
            f"-p {self.port}",
            f"-k {self.base}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=100",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        r = self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(opts),
                "start",
            ]
        )
        if r.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()} {log[-2000:]}")
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"], timeout=60)
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PgUnavailable(
        "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
