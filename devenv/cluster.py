"""Keycloak as production runs it: ``kc.sh build`` for PostgreSQL, then ``start --optimized``,
two nodes of one cluster on one database, behind a TLS-terminating reverse proxy.

* The **production build** is a copy of the pinned distribution of its own, augmented once
  by ``kc.sh build`` (``--db=postgres``, health and metrics on) with the extension in
  ``providers/``, and kept in the cache under a key of everything that went into it. The
  dev-mode distribution the other tests share is never re-augmented.
* Each **node** runs ``start --optimized`` from a home of its own (``instance_home``) with the
  options of ``docker-compose.yml``'s Keycloak: plain HTTP behind a proxy
  (``--proxy-headers=xforwarded``, ``--hostname`` = the public https URL), health and
  metrics on the management port, and JGroups on a loopback port of its own; the nodes find
  each other through Keycloak's default ``jdbc-ping`` discovery (a table in the database).
  It starts through the image's entry point (``docker/keycloak-entrypoint.sh``), with the
  database and bootstrap-admin passwords as files (``KC_*_PASSWORD_FILE``), as in compose.
* The **proxy** (``devenv.reverse_proxy``) is the public URL: https with a local certificate,
  ``X-Forwarded-*`` headers, and a routing policy the tests choose.

``KeycloakCluster.start`` fails loudly unless every node's metrics report a cluster of every
node (``vendor_cluster_size``), naming the views the nodes logged.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from apsis_core.contract import KEYCLOAK_VERSION
from devenv.entra_emulator.certs import ensure_key_material
from devenv.jdk import find_jdk
from devenv.keycloak import (
    EVENT_METRICS_BUILD_OPTION,
    REPO_ROOT,
    KeycloakServer,
    _log,
    build_extension,
    cache_dir,
    cache_options,
    event_metrics_options,
    install_distribution,
    install_extension,
    install_lock,
    instance_home,
)
from devenv.postgres import PostgresServer
from devenv.processes import free_port, kill_group
from devenv.reverse_proxy import ReverseProxy

# Build-time options (kc.sh build); everything else is given at start.
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--metrics-enabled=true", EVENT_METRICS_BUILD_OPTION)
ENTRYPOINT = REPO_ROOT / "docker" / "keycloak-entrypoint.sh"
# Infinispan's gauge of the cluster's size, and the line it logs on every new view.
_CLUSTER_SIZE = re.compile(r'^vendor_cluster_size\{[^}]*cache_manager="keycloak"[^}]*\} (\d+)', re.M)
_VIEW = re.compile(r"ISPN000094: Received new cluster view for channel \S+: \[[^\]]*\] \((\d+)\) \[([^\]]*)\]")


class ClusterNotFormed(RuntimeError):
    """The nodes are up but do not see each other."""


def production_home() -> Path:
    """The distribution built for production (PostgreSQL, health, metrics, the extension)."""
    with install_lock():
        dist = install_distribution()
        jar = build_extension()
    digest = hashlib.sha256()
    digest.update(KEYCLOAK_VERSION.encode())
    digest.update(" ".join(BUILD_OPTIONS).encode())
    digest.update(jar.read_bytes())
    home = cache_dir() / f"keycloak-{KEYCLOAK_VERSION}-production-{digest.hexdigest()[:12]}"
    if (home / ".built").exists():
        return home
    staging = cache_dir() / f".production-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(dist, staging, symlinks=True, ignore=shutil.ignore_patterns("data"))
    install_extension(staging, jar)
    jdk = find_jdk()
    env = {**os.environ, "JAVA_HOME": str(jdk.home), "PATH": f"{jdk.home / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    _log(f"building Keycloak for production ({' '.join(BUILD_OPTIONS)})")
    started = time.monotonic()
    done = subprocess.run(
        [str(staging / "bin" / "kc.sh"), "build", *BUILD_OPTIONS], cwd=staging, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"kc.sh build failed: {(done.stdout + done.stderr)[-2000:]}")
    (staging / ".built").write_text(f"{' '.join(BUILD_OPTIONS)}\n{jar.name}\n")
    if home.exists():  # a concurrent build won the race
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(home)
    _log(f"production build ready in {time.monotonic() - started:.0f}s at {home}")
    in_use = {
        Path(os.readlink(link)).parent for link in (cache_dir() / "instances").glob("*/themes") if link.is_symlink()
    }
    for old in cache_dir().glob(f"keycloak-{KEYCLOAK_VERSION}-production-*"):
        if old != home and old not in in_use:  # a running node (another checkout's jar) reads it
            shutil.rmtree(old, ignore_errors=True)
    return home


@dataclass
class ClusterNode(KeycloakServer):
    """One Keycloak node in production mode (``start --optimized``) on PostgreSQL."""

    name: str = "node"
    public_url: str = ""
    db: PostgresServer | None = None
    secrets_dir: Path | None = None  # db-password, bootstrap-admin-password
    jgroups_port: int = field(default_factory=free_port)

    def prepare_home(self) -> Path:
        home = instance_home(production_home(), f"{self.name}-{self.http_port}")
        shutil.copy2(ENTRYPOINT, home / "bin" / "apsis-entrypoint.sh")
        return home

    def mode_command(self, home: Path) -> list[str]:
        assert self.db is not None and self.public_url
        return [
            str(home / "bin" / "apsis-entrypoint.sh"),
            "start",
            "--optimized",
            *node_options(self.public_url),
            "--proxy-trusted-addresses=127.0.0.1",
            f"--db-url={self.db.jdbc_url}",
            f"--db-username={self.db.user}",
            "--db-pool-max-size=20",
            "--cache-embedded-network-bind-address=127.0.0.1",
            f"--cache-embedded-network-bind-port={self.jgroups_port}",
        ]

    def environment(self) -> dict[str, str]:
        """Secrets as files, read by the image's entry point, never in this environment."""
        assert self.secrets_dir is not None
        env = super().environment()
        del env["KC_BOOTSTRAP_ADMIN_PASSWORD"]
        env["KC_BOOTSTRAP_ADMIN_PASSWORD_FILE"] = str(self.secrets_dir / "bootstrap-admin-password")
        env["KC_DB_PASSWORD_FILE"] = str(self.secrets_dir / "db-password")
        return env

    def cluster_size(self) -> int:
        """The size of the cluster this node belongs to, from its metrics (0: unknown)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.management_port}/metrics", timeout=5) as resp:
                found = _CLUSTER_SIZE.search(resp.read().decode())
        except (urllib.error.URLError, OSError):
            return 0
        return int(float(found.group(1))) if found else 0

    def wait_logged_view(self, timeout: float) -> None:
        """Until this node has logged its first cluster view (its JGroups channel is up)."""
        deadline = time.monotonic() + timeout
        while self.logged_view() == "none":
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"Keycloak exited with code {self.process.returncode} during start; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"Keycloak formed no cluster view within {timeout:.0f}s; see {self.log_file}")
            time.sleep(0.2)

    def logged_view(self) -> str:
        """The latest cluster view this node logged, for error messages."""
        if self.log_file is None or not self.log_file.exists():
            return "none"
        views = _VIEW.findall(self.log_file.read_text(errors="replace"))
        return f"({views[-1][0]}) [{views[-1][1]}]" if views else "none"

    def kill(self) -> None:
        """SIGKILL: the node dies mid-request, as in a crash or an OOM kill."""
        if self.process is not None:
            kill_group(self.process)


def node_options(public_url: str) -> list[str]:
    """The options that make a node a production node behind a TLS-terminating reverse proxy
    (``docker-compose.yml`` gives Keycloak the same, see tests/test_deploy_files.py)."""
    return [
        f"--hostname={public_url}",
        "--http-enabled=true",
        "--proxy-headers=xforwarded",
        *cache_options(),
        *event_metrics_options(),
    ]


@dataclass
class KeycloakCluster:
    """PostgreSQL, ``size`` Keycloak nodes of one cluster, and the reverse proxy in front."""

    state_dir: Path
    truststore_paths: list[Path] = field(default_factory=list)  # CAs the nodes trust (the emulator's)
    size: int = 2
    admin_username: str = "temp-admin"
    admin_password: str = field(default_factory=lambda: os.urandom(12).hex(), repr=False)
    db: PostgresServer | None = None
    nodes: list[ClusterNode] = field(default_factory=list)
    proxy: ReverseProxy | None = None
    ca_bundle: Path | None = None  # the CA of the proxy's certificate
    timings: dict[str, float] = field(default_factory=dict)
    memory_after_start: dict[str, int] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url

    def start(self, timeout: float = 300.0) -> KeycloakCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            production_home()
            self.timings["build"] = time.monotonic() - started
            mark = time.monotonic()
            self.db = PostgresServer(self.state_dir).start()
            self.timings["postgres"] = time.monotonic() - mark
            secrets_dir = self.state_dir / "secrets"
            secrets_dir.mkdir(mode=0o700, exist_ok=True)
            for name, value in (("db-password", self.db.password), ("bootstrap-admin-password", self.admin_password)):
                (secrets_dir / name).write_text(value + "\n")
                (secrets_dir / name).chmod(0o600)
            tls = ensure_key_material(self.state_dir / "tls", ["127.0.0.1", "localhost"])
            self.ca_bundle = tls.ca_bundle
            self.proxy = ReverseProxy(tls.server_cert, tls.server_key).start()
            mark = time.monotonic()
            self.nodes = [
                ClusterNode(
                    name=f"node{i}",
                    public_url=self.public_url,
                    db=self.db,
                    secrets_dir=secrets_dir,
                    admin_username=self.admin_username,
                    admin_password=self.admin_password,
                    truststore_paths=self.truststore_paths,
                    log_file=self.state_dir / f"node{i}.log",
                )
                for i in range(1, self.size + 1)
            ]
            first, *others = self.nodes
            # The first node creates the schema and forms the cluster; the others start once
            # it has (its first cluster view), so they join it instead of forming their own,
            # and their start overlaps the rest of its bootstrap (the master realm).
            first.launch()
            first.wait_logged_view(timeout)
            for node in others:
                node.launch()
            for node in self.nodes:
                node.wait_ready(timeout)
                self.proxy.add_backend(node.name, "127.0.0.1", node.http_port)
            self.timings["nodes"] = time.monotonic() - mark
            mark = time.monotonic()
            self.wait_formed(timeout=120)
            self.timings["cluster"] = time.monotonic() - mark
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        self.memory_after_start = self.memory()
        return self

    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def wait_formed(self, timeout: float = 120.0) -> None:
        """Until every running node reports a cluster of every running node."""
        deadline = time.monotonic() + timeout
        running = self.running()
        while True:
            sizes = {n.name: n.cluster_size() for n in running}
            if all(size == len(running) for size in sizes.values()):
                return
            if time.monotonic() > deadline:
                views = {n.name: n.logged_view() for n in running}
                raise ClusterNotFormed(
                    f"the Keycloak nodes did not form one cluster of {len(running)} within {timeout:.0f}s: "
                    f"cluster sizes {sizes}, latest views logged {views}; "
                    f"see {', '.join(str(n.log_file) for n in running)}"
                )
            time.sleep(0.5)

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    def restart(self, name: str, timeout: float = 300.0) -> ClusterNode:
        """Start a stopped or killed node again (same ports) and wait until it rejoined."""
        node = self.node(name)
        node.stop()
        node.start(timeout)
        self.wait_formed()
        return node

    def memory(self) -> dict[str, int]:
        """Resident memory in bytes: each running node and PostgreSQL (a stopped node has none)."""
        out = {n.name: n.rss_bytes() for n in self.running()}
        if self.db is not None:
            out["postgres"] = self.db.rss_bytes()
        return out

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.db is not None:
            self.db.stop()
