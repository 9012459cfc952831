"""The extension's bulk links resource (``/realms/{realm}/apsis-sso/links/{alias}``) through the
real Keycloak: what it answers, paged and by object id, and who may read it."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from apsis_core.contract import LINKS_RESOURCE
from apsis_core.keycloak import KeycloakRepository
from apsis_core.keycloak import repository as repo
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, AccountFactory, create_apsis_user
from devenv.login_driver import Browser


def test_links_come_in_bulk_with_the_entra_object_id(
    accounts: AccountFactory, api: KeycloakRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    acct = accounts.create()
    linked = {}
    for n in range(5):
        email, user_id = acct.person(f"l{n}")
        oid = str(uuid.uuid4())
        api.link_user(user_id, acct.alias, oid, email)
        linked[oid] = (user_id, email)
    api.update_user(linked[next(iter(linked))][0], {"enabled": False})
    acct.person("unlinked")

    rows = list(api.idp_links(acct.alias))
    assert {r["oid"]: (r["userId"], r["email"]) for r in rows} == linked
    assert all(set(r) == {"userId", "oid", "email", "enabled", "username", "organizations"} for r in rows)
    # Each row names the user's accounts (organizations), as the Admin API's member listing does.
    assert all(r["organizations"] == [{"id": acct.org_id, "alias": acct.id}] for r in rows)
    other = accounts.create()
    also = next(iter(linked))
    api.add_member(other.org_id, linked[also][0])
    both = next(r for r in api.idp_links(acct.alias, oids=[also]))
    assert sorted(o["alias"] for o in both["organizations"]) == sorted([acct.id, other.id])
    assert sorted(o["alias"] for o in both["organizations"]) == sorted(
        o["alias"] for o in api.user_organizations(linked[also][0])
    )
    assert [r["enabled"] for r in rows if r["oid"] == next(iter(linked))] == [False]

    # Pages of the whole listing: one request per page, every link once.
    monkeypatch.setattr(repo, "LINKS_PAGE", 2)
    before = api.requests
    assert sorted(r["oid"] for r in api.idp_links(acct.alias)) == sorted(linked)
    assert api.requests - before == 3

    # By object id: only those asked, unknown ones simply absent, one request per 100.
    some = list(linked)[:2]
    before = api.requests
    found = list(api.idp_links(acct.alias, oids=[*some, str(uuid.uuid4())]))
    assert sorted(r["oid"] for r in found) == sorted(some) and api.requests - before == 1


def test_users_by_address_come_with_their_link_and_accounts(accounts: AccountFactory, api: KeycloakRepository) -> None:
    acct, other = accounts.create(), accounts.create()
    linked_email, linked_id = acct.person("linked")
    oid = str(uuid.uuid4())
    api.link_user(linked_id, acct.alias, oid, linked_email)
    plain_email, plain_id = acct.person("plain")
    api.add_member(other.org_id, plain_id)
    other_email, other_id = other.person("elsewhere")
    api.link_user(other_id, other.alias, str(uuid.uuid4()), other_email)  # a link to another IdP only

    before = api.requests
    rows = {
        r["email"]: r
        for r in api.users_by_emails(
            acct.alias, [linked_email.upper(), plain_email, other_email, f"nobody@{acct.domain}"]
        )
    }
    assert api.requests - before == 1
    assert set(rows) == {linked_email, plain_email, other_email}
    assert (rows[linked_email]["userId"], rows[linked_email]["oid"]) == (linked_id, oid)
    # No link: no ``oid`` (Keycloak's JSON leaves nulls out).
    assert "oid" not in rows[plain_email] and "oid" not in rows[other_email]
    assert sorted(o["alias"] for o in rows[plain_email]["organizations"]) == sorted([acct.id, other.id])
    assert [o["alias"] for o in rows[other_email]["organizations"]] == [other.id]
    assert set(rows[linked_email]) == {"userId", "oid", "email", "enabled", "username", "organizations"}

    from apsis_core.errors import KeycloakError, NotFound

    with pytest.raises(KeycloakError, match="400"):
        list(api.users_by_emails(acct.alias, [" "]))
    with pytest.raises(NotFound):
        list(api.users_by_emails("entra-no-such-account", [plain_email]))


@pytest.fixture
def weak_client(settings: Settings) -> Iterator[tuple[str, str]]:
    """A confidential client of the realm whose service account has no realm-management role
    (made by the master admin: the tooling may not create clients)."""
    api = KeycloakRepository.for_admin(settings)
    client_id = f"weak-{uuid.uuid4().hex[:8]}"
    uuid_ = api.create_client(
        {
            "clientId": client_id,
            "publicClient": False,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
        }
    )
    try:
        yield client_id, api.client_secret(uuid_) or ""
    finally:
        api.admin.delete_client(uuid_)


def test_only_a_token_of_the_realm_with_view_users_may_read(
    accounts: AccountFactory, settings: Settings, weak_client: tuple[str, str]
) -> None:
    acct = accounts.create()
    url = f"{settings.keycloak_url}/realms/{settings.realm}/{LINKS_RESOURCE}/links/{acct.alias}"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer not.a.token"}, timeout=30).status_code == 401
    token_url = f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token"
    client_id, secret = weak_client
    weak = requests.post(
        token_url,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    ).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {weak}"}, timeout=30).status_code == 403
    by_email = f"{settings.keycloak_url}/realms/{settings.realm}/{LINKS_RESOURCE}/users"
    assert requests.get(by_email, params={"idp": acct.alias, "email": "a@b.example"}, timeout=30).status_code == 401
    assert (
        requests.get(
            by_email,
            params={"idp": acct.alias, "email": "a@b.example"},
            headers={"Authorization": f"Bearer {weak}"},
            timeout=30,
        ).status_code
        == 403
    )
    # A master-realm administrator's token is not a token of this realm.
    admin = requests.post(
        f"{settings.keycloak_url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": "admin",
            "password": settings.keycloak_admin_password.get_secret_value(),
        },  # type: ignore[union-attr]
        timeout=30,
    ).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=30).status_code == 401
    tooling = KeycloakRepository.for_tooling(settings)
    assert list(tooling.idp_links(acct.alias)) == []
    bad = requests.get(url, params={"max": 5000}, headers={"Authorization": f"Bearer {weak}"}, timeout=30)
    assert bad.status_code == 403  # authorisation before anything else


def test_an_unknown_provider_or_bad_paging_is_refused(api: KeycloakRepository) -> None:
    from apsis_core.errors import KeycloakError, NotFound

    with pytest.raises(NotFound):
        list(api.idp_links("entra-no-such-account"))
    with pytest.raises(KeycloakError, match="400"):
        list(api.idp_links("entra-x", oids=[" "]))
    with pytest.raises(KeycloakError, match="400"):  # a key and an offset at once
        api._run(lambda: api._get(f"realms/{api.realm}/{LINKS_RESOURCE}/links/entra-x", first=2, after="u"))


@pytest.mark.parametrize(
    "params, why",
    [
        ({"first": "2147483648"}, "first is out of range"),
        ({"max": "abc"}, "max must be a whole number"),
        ({"first": "1.5"}, "first must be a whole number"),
    ],
)
def test_a_paging_parameter_that_is_no_whole_number_is_a_bad_request(
    accounts: AccountFactory, settings: Settings, params: dict[str, str], why: str
) -> None:
    """Not JAX-RS's 404 for a parameter it cannot convert: 400, saying which and why."""
    acct = accounts.create()
    url = f"{settings.keycloak_url}/realms/{settings.realm}/{LINKS_RESOURCE}/links/{acct.alias}"
    answer = requests.get(
        url, params=params, headers={"Authorization": f"Bearer {tooling_token(settings)}"}, timeout=30
    )
    assert (answer.status_code, answer.json()) == (400, {"error": why})


def tooling_token(settings: Settings) -> str:
    """The tooling's service account (what the daemon and the CLI call with)."""
    assert settings.keycloak_client_secret is not None
    answer = requests.post(
        f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": settings.keycloak_client_id,
            "client_secret": settings.keycloak_client_secret.get_secret_value(),
        },
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


@dataclass
class Reader:
    """A person of the realm allowed to view users and identity providers (realm-management's
    ``view-users`` and ``view-identity-providers``), and two clients to get tokens through."""

    username: str
    full_scope_client: tuple[str, str]
    narrow_client: tuple[str, str]


@pytest.fixture
def reader(settings: Settings, unique: str) -> Iterator[Reader]:
    admin = KeycloakRepository.for_admin(settings)
    username = f"reader-{unique}@agency.example"
    user_id = create_apsis_user(admin, username)
    management = admin.admin.get_client_id("realm-management")
    assert management
    admin.admin.assign_client_role(
        user_id,
        management,
        [admin.admin.get_client_role(management, role) for role in ("view-users", "view-identity-providers")],
    )
    made = []
    for full_scope in (True, False):
        client_id = f"reader-{'full' if full_scope else 'narrow'}-{uuid.uuid4().hex[:8]}"
        made.append(
            admin.create_client(
                {
                    "clientId": client_id,
                    "publicClient": False,
                    "fullScopeAllowed": full_scope,
                    "directAccessGrantsEnabled": True,
                    "standardFlowEnabled": False,
                }
            )
        )
    try:
        yield Reader(username, *[(admin.admin.get_client(m)["clientId"], admin.client_secret(m) or "") for m in made])
    finally:
        for m in made:
            admin.admin.delete_client(m)


def password_token(settings: Settings, client: tuple[str, str], username: str) -> str:
    answer = requests.post(
        f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": client[0],
            "client_secret": client[1],
            "username": username,
            "password": PASSWORD,
            "scope": "openid",
        },
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def account_console_token(settings: Settings, browser: Browser, username: str) -> str:
    """The token Keycloak's Account Console (a public browser app) gets for a person who signs in."""
    landing = f"{settings.keycloak_url}/realms/{settings.realm}/account/"
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": "account-console",
        "redirect_uri": landing,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    signed_in = browser.follow(
        f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/auth?{urlencode(query)}",
        PASSWORD,
        login=username,
        landing=landing,
    )
    assert signed_in.ok, signed_in.text[:300]
    code = parse_qs(urlsplit(signed_in.url).query)["code"][0]
    answer = requests.post(
        f"{settings.keycloak_url}/realms/{settings.realm}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "account-console",
            "code": code,
            "redirect_uri": landing,
            "code_verifier": verifier,
        },
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def test_the_token_is_judged_as_the_admin_api_judges_it(
    accounts: AccountFactory, settings: Settings, browser, reader: Reader
) -> None:
    """The user's roles are not enough: the token must carry them, as for Keycloak's own Admin
    API. A client without full scope, or the Account Console, gets 403 with the same person."""
    acct = accounts.create()
    base = f"{settings.keycloak_url}/realms/{settings.realm}"
    reads = {
        "links": f"{base}/{LINKS_RESOURCE}/links/{acct.alias}",
        "users": f"{base}/{LINKS_RESOURCE}/users?idp={acct.alias}&email=a@b.example",
        "idp-mappers": f"{base}/{LINKS_RESOURCE}/idp-mappers",
        "admin users": f"{settings.keycloak_url}/admin/realms/{settings.realm}/users?max=1",  # Keycloak's own
    }

    def answers(token: str | None) -> dict[str, int]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return {name: requests.get(url, headers=headers, timeout=30).status_code for name, url in reads.items()}

    assert answers(tooling_token(settings)) == dict.fromkeys(reads, 200)
    assert answers(password_token(settings, reader.full_scope_client, reader.username)) == dict.fromkeys(reads, 200)
    assert answers(password_token(settings, reader.narrow_client, reader.username)) == dict.fromkeys(reads, 403)
    assert answers(account_console_token(settings, browser(), reader.username)) == dict.fromkeys(reads, 403)
    assert {k: v for k, v in answers(None).items() if k != "admin users"} == dict.fromkeys(
        ["links", "users", "idp-mappers"], 401
    )


def test_key_pages_and_offset_pages_list_the_same_links(accounts: AccountFactory, api: KeycloakRepository) -> None:
    acct = accounts.create()
    for n in range(5):
        email, user_id = acct.person(f"k{n}")
        api.link_user(user_id, acct.alias, str(uuid.uuid4()), email)
    url = f"realms/{api.realm}/{LINKS_RESOURCE}/links/{acct.alias}"
    by_offset = [r for first in (0, 2, 4) for r in api._get(url, first=first, max=2)]
    by_key, after = [], None
    while True:
        page = api._get(url, max=2, **({"after": after} if after else {}))
        by_key += page
        if len(page) < 2:
            break
        after = page[-1]["userId"]
    assert len(by_key) == 5 and by_key == by_offset
    assert [r["userId"] for r in by_key] == sorted(r["userId"] for r in by_key)
