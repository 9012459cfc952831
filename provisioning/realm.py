"""Plan and apply the realm from ``realm-templates/realm.json``.

The template is a Keycloak realm representation (settings, ``authenticationFlows``,
``clients``) plus keys of ours: ``serviceAccountRoles`` (client id -> realm-management
roles of its service account), ``userProfile`` (top-level user-profile settings to
enforce) and ``flowCopies`` (a flow made as a copy of one of Keycloak's with some
authenticators replaced: the login page's ``apsis browser``). ``browserFlow`` is bound
after the flows exist. Each resource type has its own planner; each compares only the
fields the template names, so settings made by hand elsewhere in the realm are left alone.
"""

from __future__ import annotations

from typing import Any

from provisioning import templates
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakRepository
from provisioning.plan import Change, FieldChange, Plan, diff, merge
from apsis_core.settings import Settings

OWN_KEYS = {"authenticationFlows", "clients", "serviceAccountRoles", "userProfile", "flowCopies", "browserFlow"}


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


def plan_realm(api: KeycloakRepository, settings: Settings) -> Plan:
    desired = render_realm(settings)
    plan = Plan()
    current = api.get_realm()
    settings_rep = {k: v for k, v in desired.items() if k not in OWN_KEYS}
    if current is None:
        plan.add(Change("create", "realm", settings.realm, apply=lambda: api.create_realm(settings_rep),
                        fields=[FieldChange(k, None, v) for k, v in settings_rep.items() if k != "realm"]))
        current = {}
        exists = False
    else:
        changes = diff(current, settings_rep)
        if changes:
            update = {"realm": settings.realm, **{c.path.split(".")[0]: settings_rep[c.path.split(".")[0]] for c in changes}}
            plan.add(Change("update", "realm", settings.realm, fields=changes, apply=lambda: api.update_realm(update)))
        exists = True
    _require_providers(api, desired)
    plan.extend(_plan_user_profile(api, desired.get("userProfile", {}), exists))
    for flow in desired.get("authenticationFlows", []):
        plan.extend(_plan_flow(api, flow, exists))
    for copy in desired.get("flowCopies", []):
        plan.extend(_plan_flow_copy(api, copy, exists))
    if desired.get("browserFlow"):
        plan.extend(_plan_browser_flow_binding(api, settings.realm, desired["browserFlow"], current))
    for client in desired.get("clients", []):
        plan.extend(_plan_client(api, client, exists))
    for client_id, by_client in desired.get("serviceAccountRoles", {}).items():
        plan.extend(_plan_service_account_roles(api, client_id, by_client, exists))
    return plan


def _require_providers(api: KeycloakRepository, desired: dict[str, Any]) -> None:
    """Fail before changing anything when the server lacks an authenticator a flow needs."""
    needed = {e["authenticator"] for f in desired.get("authenticationFlows", []) for e in f.get("authenticationExecutions", [])}
    needed |= {new for copy in desired.get("flowCopies", []) for new in copy.get("replace", {}).values()}
    available = {p["id"] for p in api.authenticator_providers()}
    missing = sorted(needed - available)
    if missing:
        raise InvalidInput(
            f"Keycloak has no authenticator {missing[0]!r}: install the apsis-sso extension jar in Keycloak's providers/"
        )


def _plan_user_profile(api: KeycloakRepository, desired: dict[str, Any], exists: bool) -> Plan:
    plan = Plan()
    if not desired:
        return plan
    current = api.get_user_profile() if exists else {}
    changes = diff(current, desired)
    if changes or not exists:
        def apply() -> None:
            api.put_user_profile(merge(api.get_user_profile(), desired))
        plan.add(Change("update", "user-profile", "user profile", fields=changes or [
            FieldChange(k, None, v) for k, v in desired.items()], apply=apply))
    return plan


def _plan_flow(api: KeycloakRepository, flow: dict[str, Any], exists: bool) -> Plan:
    plan = Plan()
    alias = flow["alias"]
    wanted = [(e["authenticator"], e["requirement"]) for e in flow.get("authenticationExecutions", [])]
    current = next((f for f in api.flows() if f["alias"] == alias), None) if exists else None
    if current is None:
        def create() -> None:
            api.create_flow({k: flow[k] for k in ("alias", "description", "providerId", "topLevel", "builtIn")})
            for provider, _ in wanted:
                api.add_execution(alias, provider)
            _set_requirements(api, alias, wanted)
        plan.add(Change("create", "flow", alias, apply=create,
                        fields=[FieldChange("executions", None, [f"{p} {r}" for p, r in wanted])]))
        return plan
    executions = api.executions(alias)
    have = [(e.get("providerId"), e.get("requirement")) for e in executions if e.get("level", 0) == 0]
    if have != wanted:
        def fix() -> None:
            for execution in api.executions(alias):
                if execution.get("level", 0) == 0:
                    api.delete_execution(execution["id"])
            for provider, _ in wanted:
                api.add_execution(alias, provider)
            _set_requirements(api, alias, wanted)
        plan.add(Change("update", "flow", alias, apply=fix, fields=[
            FieldChange("executions", [f"{p} {r}" for p, r in have], [f"{p} {r}" for p, r in wanted])]))
    return plan


def _plan_flow_copy(api: KeycloakRepository, copy: dict[str, Any], exists: bool) -> Plan:
    """A flow that is Keycloak's own (``from``, e.g. the built-in ``browser``) with some
    authenticators replaced by ours. Copying keeps every other step exactly Keycloak's (cookie,
    identity-provider redirector, passwords, conditional OTP and passkeys); drift is an
    authenticator that should be replaced and is there again, or ours missing."""
    plan = Plan()
    alias, source, replace = copy["alias"], copy["from"], dict(copy.get("replace", {}))
    current = next((f for f in api.flows() if f["alias"] == alias), None) if exists else None
    if current is None:
        def create() -> None:
            if not any(f["alias"] == alias for f in api.flows()):  # a rerun after a partial apply
                api.copy_flow(source, alias)
            flow = next(f for f in api.flows() if f["alias"] == alias)
            api.update_flow(flow["id"], {**flow, "description": copy.get("description", flow.get("description"))})
            _replace_authenticators(api, alias, replace)
        plan.add(Change("create", "flow", alias, apply=create, fields=[
            FieldChange("copy of", None, source),
            *[FieldChange(f"replace {old}", None, new) for old, new in replace.items()]]))
        return plan
    providers = {e.get("providerId") for e in api.executions(alias)}
    drift = [FieldChange(f"replace {old}", old if old in providers else None, new)
             for old, new in replace.items() if old in providers or new not in providers]
    if drift:
        plan.add(Change("update", "flow", alias, fields=drift,
                        apply=lambda: _replace_authenticators(api, alias, replace)))
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
        del parents[level + 1:]
        out.append((execution, parents[level]))
        if execution.get("authenticationFlow"):
            parents.append(str(execution.get("displayName")))
    return out


def _plan_browser_flow_binding(api: KeycloakRepository, realm: str, alias: str, current: dict[str, Any]) -> Plan:
    """Bind the login page's flow once it exists (a realm update naming a missing flow fails)."""
    plan = Plan()
    if current.get("browserFlow") != alias:
        plan.add(Change("update", "realm", realm, fields=[FieldChange("browserFlow", current.get("browserFlow"), alias)],
                        apply=lambda: api.update_realm({"realm": realm, "browserFlow": alias})))
    return plan


def _set_requirements(api: KeycloakRepository, alias: str, wanted: list[tuple[str, str]]) -> None:
    executions = [e for e in api.executions(alias) if e.get("level", 0) == 0]
    for execution, (_, requirement) in zip(executions, wanted, strict=True):
        if execution.get("requirement") != requirement:
            api.update_execution(alias, {**execution, "requirement": requirement})


def _plan_client(api: KeycloakRepository, client: dict[str, Any], exists: bool) -> Plan:
    plan = Plan()
    client_id = client["clientId"]
    mappers = client.get("protocolMappers", [])
    secret = client.get("secret")
    settings_rep = {k: v for k, v in client.items() if k not in {"protocolMappers", "secret"}}
    current = api.client_by_client_id(client_id) if exists else None
    if current is None:
        plan.add(Change("create", "client", client_id, apply=lambda: api.create_client(client),
                        fields=[FieldChange(k, None, v, secret=k == "secret") for k, v in client.items()
                                if k not in {"clientId", "protocolMappers"}]))
        return plan
    uuid = current["id"]
    changes = diff(current, settings_rep)
    if secret is not None and api.client_secret(uuid) != secret:
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
        def apply() -> None:
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


def _plan_service_account_roles(
    api: KeycloakRepository, client_id: str, by_client: dict[str, list[str]], exists: bool
) -> Plan:
    plan = Plan()
    for role_client_id, role_names in by_client.items():
        wanted = sorted(role_names)
        have: list[str] = []
        client = api.client_by_client_id(client_id) if exists else None
        if client is not None:
            user = api.service_account_user(client["id"])
            role_client = api.client_by_client_id(role_client_id)
            if role_client is not None:
                have = sorted(r["name"] for r in api.user_client_roles(user["id"], role_client["id"]))
        if have == wanted:
            continue

        def apply(role_client_id: str = role_client_id, wanted: list[str] = wanted) -> None:
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

        plan.add(Change("update" if exists else "create", "service-account-roles", f"{client_id} -> {role_client_id}",
                        fields=[FieldChange("roles", have, wanted)], apply=apply))
    return plan
