"""A throwaway PostgreSQL server for the production lane: Debian's ``postgresql`` package,
a fresh cluster (``initdb``) per run, listening on one loopback port, never a mock.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the
``postgres`` system user that Debian's package creates, in a private directory under the
system temp dir (pytest's and ``.state``'s directories are not reachable by another user).
Otherwise the cluster lives in ``<state dir>/postgres``. Keycloak gets a role and a
database of its own, with a random password that travels only by stdin and environment.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devenv.processes import free_port, group_rss_bytes, stop_group

SERVER_USER = "postgres"  # created by Debian's postgresql-common


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing or the server would not start."""


def server_bindir() -> Path:
    """Where Debian keeps the server programs (``initdb`` and ``postgres`` are not on PATH there)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL's server programs are missing: install Debian's postgresql package (scripts/bootstrap.sh does)"
    )


def _server_account() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as, or None to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and there is no {SERVER_USER!r} user to run PostgreSQL as: "
            "install Debian's postgresql package"
        ) from None
    return user.pw_uid, user.pw_gid


@dataclass
class PostgresServer:
    """One PostgreSQL cluster with one database and its owner, for one run."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    database: str = "keycloak"
    user: str = "keycloak"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    process: subprocess.Popen[bytes] | None = None
    root: Path | None = None  # holds data/, the socket directory and the log
    version: str = ""

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def url(self, database: str | None = None) -> str:
        """A libpq URL for the owner role (carries the password: never log or print it)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database or self.database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database owned by the role; its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        self.sql(f"CREATE DATABASE {name} OWNER {self.user}")
        return self.url(name)

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def start(self, timeout: float = 60.0) -> PostgresServer:
        bindir = server_bindir()
        account = _server_account()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.root = self._make_root(account)
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir(mode=0o700)
        superuser_password = self.root / "superuser-password"
        superuser_password.write_text(secrets.token_urlsafe(24) + "\n")
        superuser_password.chmod(0o600)
        self._own(account, sockets, superuser_password)
        run = self._runner(account)
        # Local socket: trust (the socket directory is private); TCP: passwords, SCRAM only.
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={superuser_password}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        superuser_password.unlink()
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(sockets),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as(account),
            )
        self._wait_ready(bindir, sockets, timeout)
        # The role's password goes to psql on stdin, never on a command line.
        password = self.password.replace("'", "''")
        run(
            [
                str(bindir / "psql"),
                "-h",
                str(sockets),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
            ],
            input=f"CREATE ROLE {self.user} LOGIN PASSWORD '{password}';\n"
            f"CREATE DATABASE {self.database} OWNER {self.user};\n",
        )
        self.version = run([str(bindir / "postgres"), "--version"]).strip()
        return self

    def _make_root(self, account: tuple[int, int] | None) -> Path:
        if account is None:
            root = self.state_dir / "postgres"
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(mode=0o700)
            return root
        root = Path(tempfile.mkdtemp(prefix="apsis-sso-postgres-"))
        os.chown(root, *account)
        link = self.state_dir / "postgres"  # so the state dir still says where the cluster is
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(root)
        return root

    @staticmethod
    def _own(account: tuple[int, int] | None, *paths: Path) -> None:
        if account is not None:
            for path in paths:
                os.chown(path, *account)

    @staticmethod
    def _as(account: tuple[int, int] | None) -> dict[str, object]:
        if account is None:
            return {}
        return {
            "user": account[0],
            "group": account[1],
            "extra_groups": [],
            "env": {**os.environ, "HOME": pwd.getpwuid(account[0]).pw_dir},
        }

    def _runner(self, account: tuple[int, int] | None):  # type: ignore[no-untyped-def]
        def run(argv: list[str], input: str | None = None) -> str:
            done = subprocess.run(
                argv, input=input, capture_output=True, text=True, timeout=120, cwd=self.root, **self._as(account)
            )  # type: ignore[call-overload]
            if done.returncode != 0:
                raise PostgresUnavailable(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-500:]}")
            return str(done.stdout)

        return run

    def _wait_ready(self, bindir: Path, sockets: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PostgresUnavailable(
                    f"PostgreSQL exited with code {self.process.returncode} during start; see {self.log_file}"
                )
            ready = subprocess.run(
                [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise PostgresUnavailable(f"PostgreSQL not ready after {timeout:.0f}s; see {self.log_file}")

    def sql(self, statement: str) -> str:
        """Run one statement as the superuser over the private socket; its rows, unaligned."""
        assert self.root is not None
        bindir, account = server_bindir(), _server_account()
        return self._runner(account)(
            [
                str(bindir / "psql"),
                "-h",
                str(self.root / "sockets"),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
            ],
            input=statement + "\n",
        )

    def rss_bytes(self) -> int:
        return group_rss_bytes(self.process.pid) if self.process is not None else 0

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_group(self.process, timeout)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            link = self.state_dir / "postgres"
            if link.is_symlink():
                link.unlink()
