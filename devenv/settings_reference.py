"""docs/settings.md, made from the pydantic-settings classes: every environment variable of
the CLIs, the daemon and the portal once, with its type, default and meaning, so the page
cannot drift from the code (tests/unit/test_docs.py compares the file with this).

    .venv/bin/python -m devenv.settings_reference          # rewrite docs/settings.md
    .venv/bin/python -m devenv.settings_reference --check  # exit 1 when it is stale
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from apsis_core.mail import MailSettings
from apsis_core.settings import Settings
from devenv import generated_doc
from portal.settings import PortalSettings
from sync.settings import SyncSettings

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
# (title, who reads it, class, the base whose fields are documented under their own title)
CLASSES: tuple[tuple[str, str, type[BaseSettings], type[BaseSettings] | None], ...] = (
    ("Shared: Keycloak, Entra, the portal URL", "apsis-sso, apsis-sync and apsis-portal", Settings, None),
    ("Mail", "apsis-sync, and apsis-sso / apsis-portal when they send mail", MailSettings, None),
    ("The daemon", "apsis-sync", SyncSettings, MailSettings),
    ("The portal", "apsis-portal", PortalSettings, None),
)
INTRO = """\
# Settings

Generated from the settings classes by `python -m devenv.settings_reference` (a unit test
fails when this page differs from the code). Every setting is an environment variable, or a
line of the `.env` file in the working directory (`--env-file PATH` reads another file).
A secret can also be given as a file (the `*_FILE` variable beside it, a mounted container
secret); a secret never belongs on a command line. A bad value stops the program with one
line naming the variable (exit 2).
"""


def default_of(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
    elif field.is_required():
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Path):  # an absolute default depends on the machine or the install
        return f"`{value}`" if not value.is_absolute() else "(computed, see meaning)"
    if isinstance(value, list):  # pydantic-settings reads a list as JSON
        return f"`{json.dumps(value)}`"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def type_of(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    text = text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")
    return text.replace("|", "or")


def rows(cls: type[BaseSettings], base: type[BaseSettings] | None) -> list[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    inherited = set(base.model_fields) if base else set()
    out = []
    for name, field in cls.model_fields.items():
        if name in inherited:
            continue
        meaning = (field.description or "").replace("|", "\\|")
        out.append(f"| `{prefix}{name.upper()}` | {type_of(field)} | {default_of(field)} | {meaning} |")
    return out


def render() -> str:
    parts = [INTRO]
    for title, readers, cls, base in CLASSES:
        parts.append(f"## {title}\n\nRead by {readers}.\n")
        parts.append("| Variable | Type | Default | Meaning |\n|---|---|---|---|\n" + "\n".join(rows(cls, base)) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    return generated_doc.main(DOC, render, "devenv.settings_reference", argv)


if __name__ == "__main__":
    raise SystemExit(main())
