"""A throwaway PostgreSQL server in a temporary folder, for tests, benchmarks and replays.

:class:`ThrowawayCluster` runs the distribution's ``initdb`` and ``pg_ctl`` (found on
``PATH`` or under ``/usr/lib/postgresql/<version>/bin``), listens only on a unix socket in
its own folder (no port to collide with) and is stopped and deleted by :meth:`stop` or at
interpreter exit.  PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user the Debian package creates, or as a system user ``lashspec-pg`` created
with ``useradd`` when that is missing.  Durability settings are off (``fsync``,
``synchronous_commit``): the data is thrown away, and tests want speed, not crash safety of
the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SERVICE_USER_CANDIDATES = ("postgres", "lashspec-pg")
_SOCKET_PORT = 5432  # only names the socket file; nothing listens on TCP


class ClusterError(RuntimeError):
    """The throwaway server could not be found, initialised or started."""


def find_server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None if PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        folder = Path(os.path.realpath(on_path)).parent
        if (folder / "pg_ctl").exists():
            return folder
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return installed[-1].parent if installed else None


def _service_user() -> str | None:
    """The user the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USER_CANDIDATES:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = SERVICE_USER_CANDIDATES[-1]
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        raise ClusterError(f"cannot create the system user {name!r}: {created.stderr.strip()}")
    return name


class ThrowawayCluster:
    """A private PostgreSQL server; ``dsn()`` connects to it as its superuser."""

    def __init__(self, binaries: Path | None = None) -> None:
        found = binaries or find_server_binaries()
        if found is None:
            raise ClusterError(
                "PostgreSQL's server binaries (initdb, pg_ctl) are not installed; "
                "install the distribution's postgresql package"
            )
        self.binaries = found
        self.folder = Path(tempfile.mkdtemp(prefix="lashspec-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._user = _service_user()
        self._running = False

    def _run(self, *command: str) -> None:
        argv = list(command)
        if self._user is not None:
            argv = ["runuser", "-u", self._user, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ClusterError(
                f"{Path(command[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]} {log}".strip()
            )

    def start(self) -> ThrowawayCluster:
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self.folder.chmod(0o755)  # the socket must be reachable by the connecting user
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-k {self.folder} -p {_SOCKET_PORT} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self._running = True
        atexit.register(self.stop)
        return self

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.folder} port={_SOCKET_PORT} user=postgres dbname={dbname}"

    def stop(self) -> None:
        """Stop the server at once and delete its folder (idempotent)."""
        if self._running:
            self._running = False
            # already gone if this fails; the folder is removed below either way
            with contextlib.suppress(ClusterError):
                self._run(
                    str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
                )
        shutil.rmtree(self.folder, ignore_errors=True)
