"""Give Keycloak a permanent administrator for `apsis-sso realm apply`, and retire the
temporary bootstrap admin Keycloak made on its first start.

Keycloak's bootstrap admin (KC_BOOTSTRAP_ADMIN_*) is meant to live only until a permanent
one exists: Keycloak marks it temporary and tells everyone who signs in as it to replace
it. This creates (or, after the password file changed, updates) the master-realm user
APSIS_SSO_KEYCLOAK_ADMIN_USERNAME with the `admin` role, proves it can sign in, and then
deletes every temporary admin. Run again, it finds the permanent admin working and does
nothing else, so it runs on every `docker compose up` (service `keycloak-admin`).

Environment (the same names as apsis-sso's settings; secrets only as files):
  APSIS_SSO_KEYCLOAK_URL                 Keycloak as this container reaches it
  APSIS_SSO_KEYCLOAK_ADMIN_USERNAME      the permanent admin (not the bootstrap admin's name)
  APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE its password
  KC_BOOTSTRAP_ADMIN_USERNAME            the temporary admin (default: temp-admin, Keycloak's)
  KC_BOOTSTRAP_ADMIN_PASSWORD_FILE       its password; needed only until the permanent admin exists

Exit codes: 0 done, 2 refused or misconfigured, 75 Keycloak unreachable (retry later).
Standard library only: it runs in the apsis-sso image before anything else is configured.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

EX_CONFIG, EX_TEMPFAIL = 2, 75


class Failure(Exception):
    def __init__(self, message: str, code: int = EX_CONFIG) -> None:
        super().__init__(message)
        self.code = code


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise Failure(f"{name} is not set")
    return value


def secret(name: str) -> str:
    path = setting(name)
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise Failure(f"{name}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise Failure(f"{name}: {path} is empty")
    return value


class Keycloak:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.token = ""

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise Failure(
                    f"Keycloak at {self.url} answered HTTP {exc.code} to {method} {path}; try again later", EX_TEMPFAIL
                ) from None
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            raise Failure(
                f"Keycloak at {self.url} is unreachable ({getattr(exc, 'reason', exc)})", EX_TEMPFAIL
            ) from None

    def sign_in(self, username: str, password: str) -> bool:
        """A master-realm token for this user (admin-cli, as Keycloak's own tools do)."""
        form = urllib.parse.urlencode(
            {"grant_type": "password", "client_id": "admin-cli", "username": username, "password": password}
        ).encode()
        status, answer = self._send(
            "POST",
            "/realms/master/protocol/openid-connect/token",
            form,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status == 200 and answer:
            self.token = answer["access_token"]
            return True
        return False

    def call(self, method: str, path: str, payload: Any = None, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        status, answer = self._send(
            method,
            "/admin/realms/master" + path,
            body,
            {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        if status not in expect:
            raise Failure(f"Keycloak refused {method} /admin/realms/master{path} (HTTP {status})")
        return answer


def retire_temporary_admins(kc: Keycloak) -> str:
    """Delete every user Keycloak marked as a temporary admin; say whom."""
    users = kc.call("GET", "/users?briefRepresentation=false&max=1000") or []
    retired = [u for u in users if (u.get("attributes") or {}).get("is_temporary_admin") == ["true"]]
    for user in retired:
        kc.call("DELETE", f"/users/{user['id']}")
    return f"; deleted temporary admin {', '.join(u['username'] for u in retired)}" if retired else ""


def ensure_permanent_admin() -> str:
    url = setting("APSIS_SSO_KEYCLOAK_URL")
    username = setting("APSIS_SSO_KEYCLOAK_ADMIN_USERNAME")
    password = secret("APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE")
    bootstrap_user = os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME") or "temp-admin"
    if username == bootstrap_user:
        raise Failure(
            "APSIS_SSO_KEYCLOAK_ADMIN_USERNAME must differ from KC_BOOTSTRAP_ADMIN_USERNAME: "
            "the bootstrap admin is temporary and gets deleted"
        )
    kc = Keycloak(url)
    if kc.sign_in(username, password):
        return f"permanent admin {username} ready" + retire_temporary_admins(kc)
    if not kc.sign_in(bootstrap_user, secret("KC_BOOTSTRAP_ADMIN_PASSWORD_FILE")):
        raise Failure(
            f"neither {username} nor the bootstrap admin {bootstrap_user} can sign in to Keycloak "
            f"at {url}: check both password files"
        )
    credential = [{"type": "password", "value": password, "temporary": False}]
    found = kc.call("GET", f"/users?username={urllib.parse.quote(username)}&exact=true") or []
    if found:
        user_id = found[0]["id"]
        kc.call("PUT", f"/users/{user_id}/reset-password", credential[0])
        action = "password updated"
    else:
        kc.call("POST", "/users", {"username": username, "enabled": True, "credentials": credential}, expect=(201,))
        user_id = kc.call("GET", f"/users?username={urllib.parse.quote(username)}&exact=true")[0]["id"]
        action = "created"
    role = kc.call("GET", "/roles/admin")
    kc.call("POST", f"/users/{user_id}/role-mappings/realm", [role])
    permanent = Keycloak(url)
    if not permanent.sign_in(username, password):
        raise Failure(f"the permanent admin {username} was {action} but cannot sign in")
    return f"permanent admin {username} {action}" + retire_temporary_admins(permanent)


def main() -> int:
    try:
        print(ensure_permanent_admin())
    except Failure as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
