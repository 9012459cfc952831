"""A dev-mode server's home: what Quarkus re-augments (``lib/quarkus``) and the providers
are its own, so another server's start, or a checkout installing a different extension jar,
never writes where a running server reads; the jars of ``lib`` stay shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devenv import keycloak

pytestmark = pytest.mark.unit


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A miniature installed distribution in a cache of its own."""
    monkeypatch.setenv("APSIS_SSO_CACHE", str(tmp_path / "cache"))
    home = tmp_path / "cache" / "dist"
    for name, text in {
        "bin/kc.sh": "#!/bin/sh\n",
        "conf/keycloak.conf": "",
        "themes/base/x.ftl": "",
        "lib/quarkus-run.jar": "run",
        "lib/lib/main/a.jar": "a",
        "lib/app/keycloak.jar": "app",
        "lib/quarkus/quarkus-application.dat": "dev-mem build",
        "providers/apsis-sso-keycloak-extension-0.1.0.jar": "old jar",
    }.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    return home


def test_quarkus_build_output_is_a_private_copy_and_the_jars_are_shared(shared: Path):
    home = keycloak.instance_home(shared, "one")
    augmented = home / "lib" / "quarkus" / "quarkus-application.dat"
    assert not (home / "lib").is_symlink() and not (home / "lib" / "quarkus").is_symlink()
    # Quarkus replaces these files (a new file per start that re-augments); either way the
    # shared distribution is never touched.
    augmented.unlink()
    augmented.write_text("dev-file build")
    (home / "lib" / "quarkus" / "generated-bytecode.jar").write_text("new")
    assert (shared / "lib" / "quarkus" / "quarkus-application.dat").read_text() == "dev-mem build"
    assert not (shared / "lib" / "quarkus" / "generated-bytecode.jar").exists()
    assert (home / "lib" / "lib").resolve() == (shared / "lib" / "lib").resolve()  # shared, read only
    assert (home / "lib" / "quarkus-run.jar").read_text() == "run" and not (
        home / "lib" / "quarkus-run.jar"
    ).is_symlink()
    assert keycloak.instance_home(shared, "two") != home and augmented.read_text() == "dev-file build"


def test_a_jar_installed_later_into_the_shared_home_does_not_change_a_running_server(shared: Path, tmp_path: Path):
    home = keycloak.instance_home(shared, "running")
    mine = home / "providers" / "apsis-sso-keycloak-extension-0.1.0.jar"
    assert not (home / "providers").is_symlink()
    built = tmp_path / "target" / "apsis-sso-keycloak-extension-0.1.0.jar"  # another checkout's build
    built.parent.mkdir()
    built.write_text("new jar")
    later = (shared / "providers" / built.name).stat().st_mtime + 10
    os.utime(built, (later, later))
    keycloak.install_extension(shared, built)
    assert (shared / "providers" / built.name).read_text() == "new jar"
    assert mine.read_text() == "old jar"
    assert keycloak.instance_home(shared, "next").joinpath("providers", built.name).read_text() == "new jar"
