"""`apsis-sso keycloak-admin ensure` decides, on a master realm in memory: the permanent admin
is made by the bootstrap admin once, proven, and the temporary admins retired; run again it
changes nothing; a password file that changed updates the password; nobody able to sign in
is a one-line refusal (exit 2). The real run is the production lane's (tests/production)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from apsis_core.errors import EX_USAGE, InvalidInput, KeycloakRefused
from apsis_core.keycloak.port import User
from provisioning.master_admin import ensure_permanent_admin

pytestmark = pytest.mark.unit
_ids = itertools.count(1)


class Master:
    """The master realm: users with passwords, attributes and roles; a log of writes."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.add("temp-admin", "boot", temporary=True)

    def add(self, username: str, password: str, *, temporary: bool = False, roles: tuple[str, ...] = ()) -> str:
        user_id = f"u{next(_ids)}"
        attributes = {"is_temporary_admin": ["true"]} if temporary else {}
        self.users[user_id] = {
            "id": user_id,
            "username": username,
            "password": password,
            "attributes": attributes,
            "roles": set(roles) | ({"admin"} if temporary else set()),
        }
        return user_id

    def connect(self, username: str, password: str) -> AsUser:
        return AsUser(self, username, password)


class AsUser:
    def __init__(self, master: Master, username: str, password: str) -> None:
        self.master, self.username, self.password = master, username, password

    def _admin(self) -> None:
        me = next((u for u in self.master.users.values() if u["username"] == self.username), None)
        assert me is not None and me["password"] == self.password and "admin" in me["roles"], "not signed in"

    def sign_in(self) -> bool:
        return any(
            u["username"] == self.username and u["password"] == self.password for u in self.master.users.values()
        )

    def users(self, **params: Any) -> Iterator[User]:
        self._admin()
        for u in list(self.master.users.values()):
            yield {"id": u["id"], "username": u["username"], "attributes": u["attributes"]}

    def user_by_username(self, username: str) -> User | None:
        self._admin()
        return next(
            ({"id": u["id"], "username": username} for u in self.master.users.values() if u["username"] == username),
            None,
        )

    def create_user(self, rep: User) -> str:
        self._admin()
        self.master.writes.append(f"create {rep['username']}")
        return self.master.add(rep["username"], "")

    def set_password(self, user_id: str, password: str) -> None:
        self._admin()
        self.master.writes.append(f"password {user_id}")
        self.master.users[user_id]["password"] = password

    def add_realm_role(self, user_id: str, role_name: str) -> None:
        self._admin()
        self.master.users[user_id]["roles"].add(role_name)

    def delete_user(self, user_id: str) -> None:
        self._admin()
        self.master.writes.append(f"delete {self.master.users[user_id]['username']}")
        del self.master.users[user_id]


def ensure(master: Master, password: str = "perm", bootstrap: str = "boot") -> str:
    return ensure_permanent_admin(master.connect, "http://kc", "realm-admin", password, "temp-admin", lambda: bootstrap)


def test_the_permanent_admin_is_made_proven_and_the_bootstrap_admin_retired_then_nothing_changes():
    master = Master()
    assert ensure(master) == "permanent admin realm-admin created; deleted temporary admin temp-admin"
    assert [u["username"] for u in master.users.values()] == ["realm-admin"]
    master.writes.clear()
    assert ensure(master, bootstrap="gone") == "permanent admin realm-admin ready"
    assert master.writes == []


def test_a_changed_password_file_updates_the_password_through_the_bootstrap_admin():
    master = Master()
    master.add("realm-admin", "old", roles=("admin",))
    assert (
        ensure(master, password="new")
        == "permanent admin realm-admin password updated; deleted temporary admin temp-admin"
    )
    assert AsUser(master, "realm-admin", "new").sign_in()


def test_nobody_able_to_sign_in_or_the_same_name_twice_is_a_one_line_refusal():
    master = Master()
    with pytest.raises(KeycloakRefused, match="neither realm-admin nor the bootstrap admin temp-admin") as refused:
        ensure(master, bootstrap="wrong")
    assert refused.value.exit_code == EX_USAGE and master.writes == []
    with pytest.raises(InvalidInput, match="must differ"):
        ensure_permanent_admin(master.connect, "http://kc", "temp-admin", "x", "temp-admin", lambda: "boot")
