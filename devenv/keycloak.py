"""Install, build for, start and stop the pinned local Keycloak.

One place knows how the project gets a real Keycloak on a machine without Docker:
the Quarkus distribution is fetched from Maven Central with Maven into a cache outside
the repository, the extension is built with Maven and dropped into ``providers/``, and
the server runs in dev mode on loopback with health checks on the management port.

Used by the test session, the demo and ``.ci/run``::

    python -m devenv.keycloak install        # fetch + unpack + build the extension
    python -m devenv.keycloak start          # start in the background, wait until ready
    python -m devenv.keycloak stop
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from apsis_core.contract import KEYCLOAK_VERSION
from devenv.jdk import Jdk, find_jdk
from devenv.processes import free_port, group_rss_bytes, stop_group

__all__ = ["KeycloakServer", "free_port", "install", "instance_home"]

DIST_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
REPO_ROOT = Path(__file__).resolve().parent.parent
EXTENSION_DIR = REPO_ROOT / "keycloak-extension"
EXTENSION_JAR_PREFIX = "apsis-sso-keycloak-extension"

# Keycloak's local ``realms`` cache holds 10,000 entries unless told otherwise, and an account
# takes about four (the cache's own metrics after a no-change plan). Once the accounts'
# entries outgrow it, a listing of every organization evicts (LRU) the entries the next page
# needs, so every page is read cold from the database and a no-change plan stops growing in
# step with the accounts (the measurements: bench/README.md, "realms_cache.py" and "Figures
# behind the code"). The cache is per node (invalidated across a cluster). Rounded up to 5 per
# account for headroom when sizing.
REALMS_CACHE_ENTRIES_PER_ACCOUNT = 5
REALMS_CACHE_MAX_COUNT = 100_000


def cache_options() -> list[str]:
    """The cache sizing every Keycloak of this project starts with (dev and production)."""
    return [f"--cache-embedded-realms-max-count={REALMS_CACHE_MAX_COUNT}"]


# Keycloak's user-event metrics (keycloak_user_events_total): `--event-metrics-user-enabled`
# is a build option, the tags and events are given at start. The `idp` tag is the per-account
# view (an account's IdP alias is its id); only the events monitoring/ reads are counted.
EVENT_METRICS_BUILD_OPTION = "--event-metrics-user-enabled=true"
EVENT_METRICS_USER_TAGS = "realm,idp"
EVENT_METRICS_USER_EVENTS = (
    "login,identity_provider_login,identity_provider_first_login,identity_provider_link_account,federated_identity_link"
)


def event_metrics_options() -> list[str]:
    """The start options of the user-event metrics every Keycloak of this project runs with."""
    return [
        f"--event-metrics-user-tags={EVENT_METRICS_USER_TAGS}",
        f"--event-metrics-user-events={EVENT_METRICS_USER_EVENTS}",
    ]


def cache_dir() -> Path:
    """Where downloaded distributions live: outside the repository, shared by checkouts."""
    base = os.environ.get("APSIS_SSO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "apsis-sso"
    )
    return Path(base)


def dist_home() -> Path:
    return cache_dir() / f"keycloak-{KEYCLOAK_VERSION}"


def _log(message: str) -> None:
    print(f"[keycloak] {message}", file=sys.stderr, flush=True)


def install_distribution() -> Path:
    """Fetch the pinned Quarkus distribution with Maven and unpack it into the cache."""
    home = dist_home()
    if (home / "bin" / "kc.sh").exists():
        return home
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    download = cache / "download"
    _log(f"fetching {DIST_ARTIFACT} from Maven Central")
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact={DIST_ARTIFACT}",
            f"-DoutputDirectory={download}",
        ],
        check=True,
    )
    archive = download / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
    staging = cache / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
    unpacked = staging / f"keycloak-{KEYCLOAK_VERSION}"
    for script in (unpacked / "bin").glob("*.sh"):
        script.chmod(0o755)
    if home.exists():  # a concurrent install won the race
        shutil.rmtree(staging, ignore_errors=True)
        return home
    unpacked.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    archive.unlink(missing_ok=True)
    _log(f"installed Keycloak {KEYCLOAK_VERSION} at {home}")
    return home


def _newest_source_mtime() -> float:
    newest = 0.0
    for path in [EXTENSION_DIR / "pom.xml", *(EXTENSION_DIR / "src" / "main").rglob("*")]:
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def build_extension(force: bool = False) -> Path:
    """Build the extension jar with Maven (unless it is newer than every source)."""
    target = EXTENSION_DIR / "target"
    jars = sorted(p for p in target.glob(f"{EXTENSION_JAR_PREFIX}-*.jar") if "sources" not in p.name)
    if jars and not force and jars[-1].stat().st_mtime >= _newest_source_mtime():
        return jars[-1]
    _log("building the Keycloak extension with Maven")
    subprocess.run(["mvn", "-q", "-B", "-f", str(EXTENSION_DIR / "pom.xml"), "package"], check=True)
    jars = sorted(p for p in target.glob(f"{EXTENSION_JAR_PREFIX}-*.jar") if "sources" not in p.name)
    if not jars:
        raise RuntimeError(f"Maven built no {EXTENSION_JAR_PREFIX}-*.jar in {target}")
    return jars[-1]


def install_extension(home: Path, jar: Path) -> None:
    """Put ``jar`` in ``home/providers``: a new file (never rewritten in place), so a home
    that hard-linked or copied the previous one keeps what it started with."""
    providers = home / "providers"
    providers.mkdir(exist_ok=True)
    for old in providers.glob(f"{EXTENSION_JAR_PREFIX}-*.jar"):
        if old.name != jar.name or old.stat().st_mtime < jar.stat().st_mtime:
            old.unlink()
    dest = providers / jar.name
    if not dest.exists():
        staged = providers / f".{jar.name}.{os.getpid()}"
        shutil.copy2(jar, staged)
        staged.rename(dest)


# What Quarkus (re-)augmentation writes: the build of the application in ``lib/quarkus``
# (generated-bytecode.jar, transformed-bytecode.jar, quarkus-application.dat,
# build-system.properties). Dev mode augments at every start, so a home of its own needs its
# own copy; every other part of ``lib`` is read only and shared.
AUGMENTED = "quarkus"


def instance_home(shared: Path, name: str) -> Path:
    """A home of its own for one server, so concurrent servers (tests, the demo, benchmarks)
    never write where another reads: Keycloak writes a merged truststore (and its dev
    database) under ``<home>/data``, and dev mode rewrites ``lib/quarkus`` at every start
    (two starts sharing it fail with ``NoSuchFileException: .../quarkus-application.dat`` or
    "zip file is empty"). ``bin``, ``conf`` and ``lib/quarkus`` are copied (3.5 MB; kc.sh
    resolves its own path, and Quarkus finds ``lib/quarkus`` beside ``quarkus-run.jar``, which
    is copied too); ``providers`` is a directory of hard links (copies across file systems), so
    a jar installed later into the shared home (another checkout's build) never changes a
    running server; the jars of ``lib`` and the ``themes`` are shared by symlink."""
    home = cache_dir() / "instances" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    for part in ("bin", "conf"):
        shutil.copytree(shared / part, home / part, symlinks=True)
    (home / "lib").mkdir()
    for entry in (shared / "lib").iterdir():
        if entry.name == AUGMENTED:
            shutil.copytree(entry, home / "lib" / entry.name)
        elif entry.is_dir():
            (home / "lib" / entry.name).symlink_to(entry)
        else:
            shutil.copy2(entry, home / "lib" / entry.name)
    (home / "providers").mkdir()
    for entry in (shared / "providers").iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            _link_or_copy(entry, home / "providers" / entry.name)
    (home / "themes").symlink_to(shared / "themes")
    (home / "data").mkdir()
    return home


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


@contextlib.contextmanager
def install_lock() -> Iterator[None]:
    """One install (download, Maven build, providers) at a time per cache, across processes:
    two servers started at the same moment would otherwise run two Maven builds in one
    ``target`` or swap the jar under each other."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(force_build: bool = False) -> Path:
    """Everything a machine needs before Keycloak can start: distribution and extension."""
    with install_lock():
        home = install_distribution()
        install_extension(home, build_extension(force=force_build))
    return home


@dataclass
class KeycloakServer:
    """A Keycloak process on loopback, in dev mode, with its own home and an in-memory database."""

    http_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    admin_username: str = "admin"
    admin_password: str = field(default_factory=lambda: os.urandom(12).hex())
    truststore_paths: list[Path] = field(default_factory=list)
    database: str = "dev-mem"
    log_file: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    sized_realms_cache: bool = True
    """False: Keycloak's default realms cache (10,000 entries), for bench/realms_cache.py's comparison."""
    quarkus_properties: dict[str, str] = field(default_factory=dict)
    """Written to the home's conf/quarkus.properties (what Keycloak has no option for, such as
    the request start time its access log's time taken needs: bench/login_overhead.py)."""
    process: subprocess.Popen[bytes] | None = None
    jdk: Jdk | None = None
    home: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}/health/ready"

    def command(self, home: Path) -> list[str]:
        args = [
            *self.mode_command(home),
            "--http-host=127.0.0.1",
            f"--http-port={self.http_port}",
            f"--http-management-port={self.management_port}",
        ]
        if self.truststore_paths:
            args.append("--truststore-paths=" + ",".join(str(p) for p in self.truststore_paths))
        return args + self.extra_args

    def mode_command(self, home: Path) -> list[str]:
        """How the server is started, and the options of its mode: dev mode here."""
        return [
            str(home / "bin" / "kc.sh"),
            "start-dev",
            "--health-enabled=true",
            "--metrics-enabled=true",
            EVENT_METRICS_BUILD_OPTION,
            *event_metrics_options(),
            f"--db={self.database}",
            *(cache_options() if self.sized_realms_cache else []),
        ]

    def prepare_home(self) -> Path:
        """The home this server runs from (``instance_home``): its own ``lib/quarkus``, which
        dev mode re-augments at every start, and its own ``providers``."""
        home = instance_home(install(), f"{self.http_port}")
        if self.quarkus_properties:
            (home / "conf" / "quarkus.properties").write_text(
                "".join(f"{key}={value}\n" for key, value in self.quarkus_properties.items())
            )
        return home

    def environment(self) -> dict[str, str]:
        assert self.jdk is not None
        env = dict(os.environ)
        env["JAVA_HOME"] = str(self.jdk.home)
        env["PATH"] = f"{self.jdk.home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # The bootstrap admin's password travels by environment, never on the command line.
        env["KC_BOOTSTRAP_ADMIN_USERNAME"] = self.admin_username
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = self.admin_password
        env.setdefault("JAVA_OPTS_KC_HEAP", "-XX:MaxRAMPercentage=25 -XX:InitialRAMPercentage=2")
        return env

    def start(self, timeout: float = 240.0) -> KeycloakServer:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the process and return at once (``wait_ready`` waits for it)."""
        self.jdk = self.jdk or find_jdk()
        home = self.prepare_home()
        self.home = home
        log_target = self.log_file or (cache_dir() / f"keycloak-{self.http_port}.log")
        log_target.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = log_target
        with open(log_target, "wb") as log:
            _log(f"starting on {self.url} with Java {self.jdk.major} ({self.jdk.source}); log {log_target}")
            self.process = subprocess.Popen(
                self.command(home),
                cwd=home,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Keycloak exited with code {self.process.returncode} during start; see {self.log_file}"
                )
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"Keycloak not ready after {timeout:.0f}s; see {self.log_file}")

    def rss_bytes(self) -> int:
        """Resident memory of the Keycloak JVM (sum over the process group)."""
        return group_rss_bytes(self.process.pid) if self.process is not None else 0

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_group(self.process, timeout)
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


STATE_FILE = "keycloak.json"


def _state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def start_background(
    state_dir: Path, http_port: int, management_port: int, truststore: list[Path]
) -> dict[str, object]:
    """Start a long-lived Keycloak (in-memory database: its state ends with it) and record how to reach and stop it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    existing = status(state_dir)
    if existing.get("running"):
        return existing
    password_file = state_dir / "keycloak-admin-password"
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = os.urandom(12).hex()
        password_file.write_text(password)
        password_file.chmod(0o600)
    server = KeycloakServer(
        http_port=http_port,
        management_port=management_port,
        admin_password=password,
        truststore_paths=truststore,
        log_file=state_dir / "keycloak.log",
    )
    server.start()
    assert server.process is not None
    info: dict[str, object] = {
        "pid": server.process.pid,
        "url": server.url,
        "management_url": f"http://127.0.0.1:{server.management_port}",
        "admin_username": server.admin_username,
        "admin_password_file": str(password_file),
        "log": str(server.log_file),
    }
    _state_path(state_dir).write_text(json.dumps(info, indent=2))
    return {**info, "running": True}


def status(state_dir: Path) -> dict[str, object]:
    path = _state_path(state_dir)
    if not path.exists():
        return {"running": False}
    info = json.loads(path.read_text())
    try:
        os.kill(int(info["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return {**info, "running": False}
    try:
        with urllib.request.urlopen(f"{info['management_url']}/health/ready", timeout=2) as resp:
            ready = resp.status == 200
    except (urllib.error.URLError, OSError):
        ready = False
    return {**info, "running": ready}


def stop_background(state_dir: Path) -> bool:
    path = _state_path(state_dir)
    if not path.exists():
        return False
    info = json.loads(path.read_text())
    pid = int(info["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return False
    for _ in range(60):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.keycloak", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="fetch the distribution and build/install the extension")
    inst.add_argument("--force-build", action="store_true")
    start = sub.add_parser("start", help="start in the background and wait until ready")
    start.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state")
    start.add_argument("--port", type=int, default=8080)
    start.add_argument("--management-port", type=int, default=9000)
    start.add_argument("--truststore", type=Path, action="append", default=[])
    for name in ("stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state")
    args = parser.parse_args(argv)
    if args.command == "install":
        started = time.monotonic()
        home = install(force_build=args.force_build)
        print(json.dumps({"home": str(home), "seconds": round(time.monotonic() - started, 1)}))
    elif args.command == "start":
        print(json.dumps(start_background(args.state_dir, args.port, args.management_port, args.truststore), indent=2))
    elif args.command == "stop":
        print("stopped" if stop_background(args.state_dir) else "not running")
    else:
        print(json.dumps(status(args.state_dir), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
