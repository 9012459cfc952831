"""Plan and apply the realm from ``realm-templates/realm.json``.

The template is a Keycloak realm representation (settings, ``authenticationFlows``,
``clients``) plus keys of ours: ``serviceAccountRoles`` (client id -> realm-management
roles of its service account), ``userProfile`` (top-level user-profile settings to
enforce) and ``flowCopies`` (a flow made as a copy of one of Keycloak's with some
authenticators replaced: the login page's ``apsis browser``). ``browserFlow`` is bound
after the flows exist. Each resource type has its own planner; each compares only the
fields the template names, so settings made by hand elsewhere in the realm are left alone.

``RealmState.load`` reads what the template names, up front; ``realm_plan`` is a pure
function of the rendered template and that state; the steps re-read at apply time, so a
run cut short is completed by the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from provisioning import templates
from provisioning.plan import Change, FieldChange, Plan, diff, merge

OWN_KEYS = {"authenticationFlows", "clients", "serviceAccountRoles", "userProfile", "flowCopies", "browserFlow"}

RealmPlan = Plan[KeycloakRepository]
"""A plan of the realm: applied by a master-realm administrator's repository."""


def render_realm(settings: Settings) -> dict[str, Any]:
    if settings.keycloak_client_secret is None:
        raise InvalidInput(
            "realm apply needs the tooling client's secret: set APSIS_SSO_KEYCLOAK_CLIENT_SECRET or _FILE"
        )
    account_console = f"{settings.public_url}/realms/{settings.realm}/account/*"
    values = {
        "realm": settings.realm,
        "admin_client_id": settings.keycloak_client_id,
        "admin_client_secret": settings.keycloak_client_secret.get_secret_value(),
        "apsis_one_redirect_uris": [*settings.apsis_one_redirect_uris, account_console],
    }
    return templates.render_file(settings.templates_dir, "realm.json", values)


@dataclass
class RealmState:
    """What the realm holds now of what the template names."""

    realm: dict[str, Any] | None
    providers: set[str]
    user_profile: dict[str, Any] = field(default_factory=dict)
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_secrets: dict[str, str | None] = field(default_factory=dict)
    service_account_roles: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.realm is not None

    @classmethod
    def load(cls, api: KeycloakRepository, desired: dict[str, Any]) -> RealmState:
        state = cls(realm=api.get_realm(), providers={p["id"] for p in api.authenticator_providers()})
        if not state.exists:
            return state
        if desired.get("userProfile"):
            state.user_profile = api.get_user_profile()
        state.flows = {f["alias"]: f for f in api.flows()}
        for alias in [f["alias"] for f in desired.get("authenticationFlows", [])] + [
            c["alias"] for c in desired.get("flowCopies", [])
        ]:
            if alias in state.flows:
                state.executions[alias] = api.executions(alias)
        for client in desired.get("clients", []):
            current = api.client_by_client_id(client["clientId"])
            if current is not None:
                state.clients[client["clientId"]] = current
                if client.get("secret") is not None:
                    state.client_secrets[client["clientId"]] = api.client_secret(current["id"])
        for client_id, by_client in desired.get("serviceAccountRoles", {}).items():
            client = state.clients.get(client_id) or api.client_by_client_id(client_id)
            if client is None:
                continue
            user = api.service_account_user(client["id"])
            for role_client_id in by_client:
                role_client = api.client_by_client_id(role_client_id)
                if role_client is not None:
                    state.service_account_roles[(client_id, role_client_id)] = sorted(
                        r["name"] for r in api.user_client_roles(user["id"], role_client["id"])
                    )
        return state


def plan_realm(api: KeycloakRepository, settings: Settings) -> RealmPlan:
    """The realm's plan: the template rendered, what Keycloak holds read, then compared."""
    desired = render_realm(settings)
    return realm_plan(desired, RealmState.load(api, desired), settings.realm)


def realm_plan(desired: dict[str, Any], state: RealmState, realm: str) -> RealmPlan:
    """Changes that make the realm hold the template, from ``state`` alone."""
    plan: RealmPlan = Plan()
    settings_rep = {k: v for k, v in desired.items() if k not in OWN_KEYS}
    current = state.realm or {}
    if not state.exists:
        plan.add(
            Change(
                "create",
                "realm",
                realm,
                apply=lambda api: api.create_realm(settings_rep),
                fields=[FieldChange(k, None, v) for k, v in settings_rep.items() if k != "realm"],
            )
        )
    else:
        changes = diff(current, settings_rep)
        if changes:
            update = {"realm": realm, **{c.path.split(".")[0]: settings_rep[c.path.split(".")[0]] for c in changes}}
            plan.add(Change("update", "realm", realm, fields=changes, apply=lambda api: api.update_realm(update)))
    _require_providers(state, desired)
    plan.extend(_plan_user_profile(state, desired.get("userProfile", {})))
    for flow in desired.get("authenticationFlows", []):
        plan.extend(_plan_flow(state, flow))
    for copy in desired.get("flowCopies", []):
        plan.extend(_plan_flow_copy(state, copy))
    if desired.get("browserFlow"):
        plan.extend(_plan_browser_flow_binding(realm, desired["browserFlow"], current))
    for client in desired.get("clients", []):
        plan.extend(_plan_client(state, client))
    for client_id, by_client in desired.get("serviceAccountRoles", {}).items():
        plan.extend(_plan_service_account_roles(state, client_id, by_client))
    return plan


def _require_providers(state: RealmState, desired: dict[str, Any]) -> None:
    """Fail before changing anything when the server lacks an authenticator a flow needs."""
    needed = {
        e["authenticator"]
        for f in desired.get("authenticationFlows", [])
        for e in f.get("authenticationExecutions", [])
    }
    needed |= {new for copy in desired.get("flowCopies", []) for new in copy.get("replace", {}).values()}
    missing = sorted(needed - state.providers)
    if missing:
        raise InvalidInput(
            f"Keycloak has no authenticator {missing[0]!r}: install the apsis-sso extension jar in Keycloak's providers/"
        )


def _plan_user_profile(state: RealmState, desired: dict[str, Any]) -> RealmPlan:
    plan: RealmPlan = Plan()
    if not desired:
        return plan
    changes = diff(state.user_profile, desired)
    if changes or not state.exists:

        def apply(api: KeycloakRepository) -> None:
            api.put_user_profile(merge(api.get_user_profile(), desired))

        plan.add(
            Change(
                "update",
                "user-profile",
                "user profile",
                fields=changes or [FieldChange(k, None, v) for k, v in desired.items()],
                apply=apply,
            )
        )
    return plan


def _plan_flow(state: RealmState, flow: dict[str, Any]) -> RealmPlan:
    plan: RealmPlan = Plan()
    alias = flow["alias"]
    wanted = [(e["authenticator"], e["requirement"]) for e in flow.get("authenticationExecutions", [])]
    if alias not in state.flows:

        def create(api: KeycloakRepository) -> None:
            api.create_flow({k: flow[k] for k in ("alias", "description", "providerId", "topLevel", "builtIn")})
            for provider, _ in wanted:
                api.add_execution(alias, provider)
            _set_requirements(api, alias, wanted)

        plan.add(
            Change(
                "create",
                "flow",
                alias,
                apply=create,
                fields=[FieldChange("executions", None, [f"{p} {r}" for p, r in wanted])],
            )
        )
        return plan
    have = [
        (e.get("providerId"), e.get("requirement")) for e in state.executions.get(alias, []) if e.get("level", 0) == 0
    ]
    if have != wanted:

        def fix(api: KeycloakRepository) -> None:
            for execution in api.executions(alias):
                if execution.get("level", 0) == 0:
                    api.delete_execution(execution["id"])
            for provider, _ in wanted:
                api.add_execution(alias, provider)
            _set_requirements(api, alias, wanted)

        plan.add(
            Change(
                "update",
                "flow",
                alias,
                apply=fix,
                fields=[FieldChange("executions", [f"{p} {r}" for p, r in have], [f"{p} {r}" for p, r in wanted])],
            )
        )
    return plan


def _plan_flow_copy(state: RealmState, copy: dict[str, Any]) -> RealmPlan:
    """A flow that is Keycloak's own (``from``, e.g. the built-in ``browser``) with some
    authenticators replaced by ours. Copying keeps every other step exactly Keycloak's (cookie,
    identity-provider redirector, passwords, conditional OTP and passkeys); drift is an
    authenticator that should be replaced and is there again, or ours missing."""
    plan: RealmPlan = Plan()
    alias, source, replace = copy["alias"], copy["from"], dict(copy.get("replace", {}))
    if alias not in state.flows:

        def create(api: KeycloakRepository) -> None:
            if not any(f["alias"] == alias for f in api.flows()):  # a rerun after a partial apply
                api.copy_flow(source, alias)
            flow = next(f for f in api.flows() if f["alias"] == alias)
            api.update_flow(flow["id"], {**flow, "description": copy.get("description", flow.get("description"))})
            _replace_authenticators(api, alias, replace)

        plan.add(
            Change(
                "create",
                "flow",
                alias,
                apply=create,
                fields=[
                    FieldChange("copy of", None, source),
                    *[FieldChange(f"replace {old}", None, new) for old, new in replace.items()],
                ],
            )
        )
        return plan
    providers = {e.get("providerId") for e in state.executions.get(alias, [])}
    drift = [
        FieldChange(f"replace {old}", old if old in providers else None, new)
        for old, new in replace.items()
        if old in providers or new not in providers
    ]
    if drift:
        plan.add(
            Change(
                "update", "flow", alias, fields=drift, apply=lambda api: _replace_authenticators(api, alias, replace)
            )
        )
    return plan


def _replace_authenticators(api: KeycloakRepository, alias: str, replace: dict[str, str]) -> None:
    """Put each ``new`` authenticator where ``old`` is (same subflow, same requirement), then
    remove ``old``. Each step re-reads the flow, so an interrupted run is completed by the next."""
    for old, new in replace.items():
        for execution, parent in _with_parents(api, alias):
            if execution.get("providerId") != old:
                continue
            present = [e for e, p in _with_parents(api, alias) if p == parent and e.get("providerId") == new]
            if not present:
                api.add_execution(parent, new)
                present = [e for e, p in _with_parents(api, alias) if p == parent and e.get("providerId") == new]
            for added in present:
                if added.get("requirement") != execution.get("requirement"):
                    api.update_execution(parent, {**added, "requirement": execution.get("requirement")})
            api.delete_execution(execution["id"])


def _with_parents(api: KeycloakRepository, alias: str) -> list[tuple[dict[str, Any], str]]:
    """Every execution of a flow (depth first, as Keycloak lists them) with the alias of the
    (sub)flow it sits in: a subflow's entry names it (``displayName``) and its executions
    follow one level deeper."""
    parents = [alias]
    out: list[tuple[dict[str, Any], str]] = []
    for execution in api.executions(alias):
        level = int(execution.get("level", 0))
        del parents[level + 1 :]
        out.append((execution, parents[level]))
        if execution.get("authenticationFlow"):
            parents.append(str(execution.get("displayName")))
    return out


def _plan_browser_flow_binding(realm: str, alias: str, current: dict[str, Any]) -> RealmPlan:
    """Bind the login page's flow once it exists (a realm update naming a missing flow fails)."""
    plan: RealmPlan = Plan()
    if current.get("browserFlow") != alias:
        plan.add(
            Change(
                "update",
                "realm",
                realm,
                fields=[FieldChange("browserFlow", current.get("browserFlow"), alias)],
                apply=lambda api: api.update_realm({"realm": realm, "browserFlow": alias}),
            )
        )
    return plan


def _set_requirements(api: KeycloakRepository, alias: str, wanted: list[tuple[str, str]]) -> None:
    executions = [e for e in api.executions(alias) if e.get("level", 0) == 0]
    for execution, (_, requirement) in zip(executions, wanted, strict=True):
        if execution.get("requirement") != requirement:
            api.update_execution(alias, {**execution, "requirement": requirement})


def _plan_client(state: RealmState, client: dict[str, Any]) -> RealmPlan:
    plan: RealmPlan = Plan()
    client_id = client["clientId"]
    mappers = client.get("protocolMappers", [])
    secret = client.get("secret")
    settings_rep = {k: v for k, v in client.items() if k not in {"protocolMappers", "secret"}}
    current = state.clients.get(client_id)
    if current is None:
        plan.add(
            Change(
                "create",
                "client",
                client_id,
                apply=lambda api: api.create_client(client),
                fields=[
                    FieldChange(k, None, v, secret=k == "secret")
                    for k, v in client.items()
                    if k not in {"clientId", "protocolMappers"}
                ],
            )
        )
        return plan
    uuid = current["id"]
    changes = diff(current, settings_rep)
    if secret is not None and state.client_secrets.get(client_id) != secret:
        changes.append(FieldChange("secret", "(set)", secret, secret=True))
    current_mappers = {m["name"]: m for m in current.get("protocolMappers", [])}
    mapper_updates: list[dict[str, Any]] = []
    for mapper in mappers:
        have = current_mappers.get(mapper["name"])
        mapper_changes = diff(have, mapper, prefix=f"protocolMappers[{mapper['name']}].")
        if mapper_changes:
            changes.extend(mapper_changes)
            mapper_updates.append(mapper)
    if changes:

        def apply(api: KeycloakRepository) -> None:
            fresh = api.client_by_client_id(client_id) or current
            body = merge(fresh, settings_rep)
            if secret is not None:
                body["secret"] = secret
            kept = {m["name"]: m for m in fresh.get("protocolMappers", [])}
            for mapper in mapper_updates:
                kept[mapper["name"]] = merge(kept.get(mapper["name"], {}), mapper)
            body["protocolMappers"] = list(kept.values())
            api.update_client(uuid, body)

        plan.add(Change("update", "client", client_id, fields=changes, apply=apply))
    return plan


def _plan_service_account_roles(state: RealmState, client_id: str, by_client: dict[str, list[str]]) -> RealmPlan:
    plan: RealmPlan = Plan()
    for role_client_id, role_names in by_client.items():
        wanted = sorted(role_names)
        have = state.service_account_roles.get((client_id, role_client_id), [])
        if have == wanted:
            continue

        def apply(api: KeycloakRepository, role_client_id: str = role_client_id, wanted: list[str] = wanted) -> None:
            client = api.client_by_client_id(client_id)
            role_client = api.client_by_client_id(role_client_id)
            if client is None or role_client is None:
                raise InvalidInput(f"client {client_id} or {role_client_id} is missing in realm {api.realm}")
            user = api.service_account_user(client["id"])
            available = {r["name"]: r for r in api.client_roles(role_client["id"])}
            unknown = sorted(set(wanted) - available.keys())
            if unknown:
                raise InvalidInput(f"realm.json names unknown {role_client_id} role {unknown[0]!r}")
            current = {r["name"]: r for r in api.user_client_roles(user["id"], role_client["id"])}
            add = [available[n] for n in wanted if n not in current]
            remove = [r for n, r in current.items() if n not in wanted]
            if add:
                api.add_user_client_roles(user["id"], role_client["id"], add)
            if remove:
                api.remove_user_client_roles(user["id"], role_client["id"], remove)

        plan.add(
            Change(
                "update" if state.exists else "create",
                "service-account-roles",
                f"{client_id} -> {role_client_id}",
                fields=[FieldChange("roles", have, wanted)],
                apply=apply,
            )
        )
    return plan


def apply_realm(api: KeycloakRepository, settings: Settings) -> RealmPlan:
    """Plan and apply in one go (tests, the demo, benchmarks); ``realm apply`` prints between."""
    plan = plan_realm(api, settings)
    plan.apply(api)
    return plan
