"""Give Keycloak a permanent administrator for ``apsis-sso realm apply``, and retire the
temporary bootstrap admin Keycloak made on its first start (``apsis-sso keycloak-admin
ensure``; the compose service ``keycloak-admin`` runs it on every ``up``).

Keycloak's bootstrap admin (``KC_BOOTSTRAP_ADMIN_*``) is meant to live only until a
permanent one exists: Keycloak marks it temporary (attribute ``is_temporary_admin``) and
tells everyone who signs in as it to replace it. ``ensure_permanent_admin`` creates (or,
after the password file changed, updates) the master-realm user with the ``admin`` role,
proves it can sign in, and then deletes every temporary admin. Run again, it finds the
permanent admin working and does nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from apsis_core.errors import InvalidInput, KeycloakRefused
from apsis_core.keycloak.port import User

TEMPORARY_ADMIN = "is_temporary_admin"  # the attribute Keycloak marks its bootstrap admin with
ADMIN_ROLE = "admin"


class MasterRealm(Protocol):
    """The master realm as one of its users (``KeycloakRepository.for_master``)."""

    def sign_in(self) -> bool: ...
    def users(self, **params: Any) -> Iterator[User]: ...
    def user_by_username(self, username: str) -> User | None: ...
    def create_user(self, rep: User) -> str: ...
    def set_password(self, user_id: str, password: str) -> None: ...
    def add_realm_role(self, user_id: str, role_name: str) -> None: ...
    def delete_user(self, user_id: str) -> None: ...


Connect = Callable[[str, str], MasterRealm]
"""The master realm as the user of this name and password."""


def ensure_permanent_admin(
    connect: Connect,
    where: str,
    username: str,
    password: str,
    bootstrap_username: str,
    bootstrap_password: Callable[[], str],
) -> str:
    """Make ``username`` a working permanent admin (as the bootstrap admin when it is not one
    yet), then retire the temporary admins; the one line says what was done. ``where`` names
    Keycloak in messages; ``bootstrap_password`` is read only when it is needed."""
    if username == bootstrap_username:
        raise InvalidInput(
            "APSIS_SSO_KEYCLOAK_ADMIN_USERNAME must differ from KC_BOOTSTRAP_ADMIN_USERNAME: "
            "the bootstrap admin is temporary and gets deleted"
        )
    permanent = connect(username, password)
    if permanent.sign_in():
        return f"permanent admin {username} ready" + retire_temporary_admins(permanent)
    bootstrap = connect(bootstrap_username, bootstrap_password())
    if not bootstrap.sign_in():
        raise KeycloakRefused(
            f"neither {username} nor the bootstrap admin {bootstrap_username} can sign in to Keycloak "
            f"at {where}: check both password files"
        )
    found = bootstrap.user_by_username(username)
    if found is not None:
        user_id = found["id"]
        action = "password updated"
    else:
        user_id = bootstrap.create_user({"username": username, "enabled": True})
        action = "created"
    bootstrap.set_password(user_id, password)
    bootstrap.add_realm_role(user_id, ADMIN_ROLE)
    permanent = connect(username, password)
    if not permanent.sign_in():
        raise KeycloakRefused(f"the permanent admin {username} was {action} but cannot sign in")
    return f"permanent admin {username} {action}" + retire_temporary_admins(permanent)


def retire_temporary_admins(master: MasterRealm) -> str:
    """Delete every user Keycloak marked as a temporary admin; say whom."""
    retired = [u for u in master.users() if (u.get("attributes") or {}).get(TEMPORARY_ADMIN) == ["true"]]
    for user in retired:
        master.delete_user(user["id"])
    return f"; deleted temporary admin {', '.join(u.get('username', '') for u in retired)}" if retired else ""
