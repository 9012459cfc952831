"""The portal's pages: open a link, set up SSO, follow the test users, declare it ready, renew.

Every page that acts for an account starts with ``visit``: the signed session cookie, the
account as Keycloak holds it now, and the invitation the session was opened from — still
open, not expired, and of this page's intent. Every form is checked for the session's CSRF
token and counted against the link's rate limit before anything else happens. The work is
the library's (``provisioning.onboarding``: the same path as ``apsis-sso account create``
and ``rotate-secret``); what happened goes to the audit trail, and the platform team
hears about completed setups and renewals.
"""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from apsis_core import invitations, redaction, validation
from apsis_core.account import Account, AccountRecord
from apsis_core.certificates import PublicCertificate
from apsis_core.domain_ownership import DomainsNotProven
from apsis_core.errors import ApsisError, EntraRefused, InvalidInput, is_temporary
from apsis_core.invitations import Invitation
from portal import explain, forms, link_lookup, notify, results
from portal.audit import AuditAction, Outcome
from portal.context import Portal, portal_of
from portal.explain import Problem
from portal.refusals import UNAVAILABLE, Refused, too_many
from portal.security import CSRF_FIELD, Session, csrf_ok, origin_ok
from provisioning import assertion_keys, onboarding
from provisioning.links import redirect_uri
from provisioning.steps import SetupInProgress

log = logging.getLogger("apsis_portal")

FORM_LIMITS: dict[str, Any] = {"max_files": 0, "max_fields": 20, "max_part_size": 64 * 1024}


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def problem(request: Request, found: Problem, *, clear: bool = False, retry_after: float | None = None) -> Response:
    portal = portal_of(request)
    headers = {"retry-after": str(math.ceil(retry_after))} if retry_after is not None else None
    response = portal.page(request, "problem.html", found.status, headers, problem=found)
    if clear:
        response.headers.append("set-cookie", portal.sessions.clear_header())
    return response


async def refused(request: Request, exc: Exception) -> Response:
    """The one handler of ``Refused``: its problem page, or its redirect."""
    assert isinstance(exc, Refused)
    if exc.redirect is not None:
        return RedirectResponse(exc.redirect, status_code=303)
    assert exc.problem is not None
    return problem(request, exc.problem, clear=exc.clear, retry_after=exc.retry_after)


# -- pages without an account ---------------------------------------------------------------


async def home(request: Request) -> Response:
    return portal_of(request).page(request, "home.html")


async def healthz(request: Request) -> Response:
    """Liveness (``/livez``, ``/healthz``): the process serves requests. Never Keycloak's state:
    an outage there must not restart the portal."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: Keycloak answers the portal's tooling client (one organization lookup)."""
    try:
        await portal_of(request).call(lambda api: api.organization_by_alias("apsis-portal-readiness"))
    except ApsisError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    except Exception as exc:  # noqa: BLE001 - a transport error of any kind: not ready, and say which
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


async def not_found(request: Request, exc: Exception) -> Response:
    return problem(
        request, Problem(404, "Page not found", "There is no such page here.", "Open the link from your mail.")
    )


async def not_allowed(request: Request, exc: Exception) -> Response:
    return problem(
        request,
        Problem(405, "Not allowed", "This page does not take that kind of request.", "Open the link from your mail."),
    )


async def failed(request: Request, exc: Exception) -> Response:
    log.error("unexpected error", extra={"path": request.url.path, "error": type(exc).__name__})
    return problem(
        request,
        Problem(
            500,
            "Something went wrong on our side",
            "We could not finish this request; we have been told.",
            "Try again in a few minutes.",
        ),
    )


# -- opening a link -------------------------------------------------------------------------


async def open_link(request: Request) -> Response:
    """``/i/<account>/<token>``: check the link, open a session, go to its page. The token
    itself leaves the address bar at once (the page after the redirect has a plain URL).
    Checking it is the same work whether the account exists or not (``link_lookup``)."""
    portal = portal_of(request)
    account, token = request.path_params["account"], request.path_params["token"]
    wait = portal.opens.hit(f"open:{_client(request)}")
    if wait is not None:
        portal.audit.record(
            "link-opened", account=None, outcome="refused", client=_client(request), reason="rate-limited"
        )
        raise too_many(wait)
    contact = portal.mail.platform_team_email
    found = link_lookup.Found(None, None)
    try:
        validation.account_id(account)
        if invitations.well_formed(token):
            found = await portal.call(link_lookup.lookup, account, token)
    except InvalidInput:
        pass  # no such account can exist: nothing to look up
    except ApsisError as exc:
        if is_temporary(exc):
            raise Refused(UNAVAILABLE) from None
    record, invitation = found.record, found.invitation
    verdict = invitations.verdict(invitation)
    if record is None or invitation is None or verdict != "valid":
        portal.audit.record(
            "link-opened",
            account=record.id if record else None,
            outcome="refused",
            client=_client(request),
            invitation=invitation.id if invitation else None,
            reason=verdict,
        )
        raise Refused(explain.link_problem(verdict, invitation, contact))
    _, cookie = portal.sessions.new(record.id, invitation.digest)
    _audit(portal, request, "link-opened", record, invitation, "ok", intent=invitation.intent)
    response = RedirectResponse(f"/{invitation.intent}", status_code=303)
    response.headers.append("set-cookie", portal.sessions.cookie_header(cookie))
    return response


@dataclass(frozen=True)
class Visit:
    record: AccountRecord
    invitation: Invitation
    session: Session


async def visit(request: Request, intent: str) -> Visit:
    """The session's account and invitation, both still good for this page (else ``Refused``
    with the page that says why not, or a redirect to the page the link is for)."""
    portal = portal_of(request)
    session = portal.sessions.read(request.cookies.get(portal.sessions.cookie_name))
    if session is None:
        raise Refused(explain.SESSION_ENDED, clear=True)
    try:
        record = await portal.call(onboarding.load, session.account)
    except ApsisError as exc:
        if is_temporary(exc):
            raise Refused(UNAVAILABLE) from None
        contact = portal.mail.platform_team_email
        raise Refused(explain.link_problem("unknown", None, contact), clear=True) from None
    invitation = next(
        (i for i in invitations.of_record(record) if hmac.compare_digest(i.digest, session.invitation)), None
    )
    verdict = invitations.verdict(invitation)
    if invitation is None or verdict != "valid":
        raise Refused(explain.link_problem(verdict, invitation, portal.mail.platform_team_email), clear=True)
    if invitation.intent != intent:
        raise Refused(redirect=f"/{invitation.intent}")
    return Visit(record, invitation, session)


def _audit(
    portal: Portal,
    request: Request,
    action: AuditAction,
    record: AccountRecord,
    invitation: Invitation,
    outcome: Outcome,
    **details: Any,
) -> None:
    portal.audit.record(
        action,
        account=record.id,
        outcome=outcome,
        actor=record.it_contact.email or "it-contact",
        invitation=invitation.id,
        client=_client(request),
        **details,
    )


async def submission(request: Request, visit: Visit, action: AuditAction) -> FormData:
    """A POST's fields, once it proved to come from this session's page and the link's rate
    limit allows it; otherwise ``Refused`` (audited)."""
    portal = portal_of(request)
    form = await request.form(**FORM_LIMITS)
    if not origin_ok(request.headers.get("origin"), portal.url) or not csrf_ok(visit.session, form.get(CSRF_FIELD)):  # type: ignore[arg-type]
        _audit(portal, request, action, visit.record, visit.invitation, "refused", reason="csrf")
        raise Refused(explain.FORM_EXPIRED)
    wait = portal.submissions.hit(f"submit:{visit.invitation.digest}")
    if wait is not None:
        _audit(portal, request, action, visit.record, visit.invitation, "refused", reason="rate-limited")
        raise too_many(wait)
    return form


def _fields(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- setup ----------------------------------------------------------------------------------


def _needs_form(record: AccountRecord) -> bool:
    """The Entra details are still to come (or a setup stopped midway: submitting completes it)."""
    return record.awaiting_setup or not record.complete


async def setup(request: Request) -> Response:
    found = await visit(request, "setup")
    if request.method == "POST":
        return await _setup_submit(request, found)
    return await _setup_page(request, found)


async def _setup_page(
    request: Request,
    visit: Visit,
    *,
    status: int = 200,
    submitted: forms.Submitted | None = None,
    error: str | None = None,
    warnings: list[str] | None = None,
) -> Response:
    portal = portal_of(request)
    record = visit.record
    context: dict[str, Any] = {
        "record": record,
        "invitation": visit.invitation,
        "csrf": visit.session.csrf,
        "error": error,
        "warnings": warnings or [],
    }
    if _needs_form(record):
        values = submitted.values if submitted else {"test_users": "\n".join(record.pilot)}
        return portal.page(
            request,
            "setup.html",
            status,
            redirect_uri=redirect_uri(portal.settings, record.id),
            certificate=_certificate_or_none(portal),
            values=values,
            errors=submitted.errors if submitted else {},
            **context,
        )
    tested = await portal.call(results.read, record)
    return portal.page(
        request,
        "status.html",
        status,
        links=onboarding.customer_links(portal.settings, record.settings()),
        results=tested,
        ready=any(r.ok for r in tested),
        refresh=portal.portal.refresh_seconds,
        explain=explain.sign_in_refused,
        go_live=portal.portal.go_live,
        **context,
    )


async def _setup_submit(request: Request, visit: Visit) -> Response:
    portal = portal_of(request)
    form = await submission(request, visit, "setup-submitted")
    record = visit.record
    if not _needs_form(record):
        _audit(portal, request, "setup-submitted", record, visit.invitation, "refused", reason="already-set-up")
        return RedirectResponse("/setup", status_code=303)
    submitted, parsed = forms.read_setup(_fields(form), record)
    if parsed is None:
        _audit(
            portal,
            request,
            "setup-submitted",
            record,
            visit.invitation,
            "refused",
            reason="form",
            fields=sorted(submitted.errors),
        )
        return await _setup_page(request, visit, status=400, submitted=submitted)
    if parsed.secret is not None:
        redaction.remember(parsed.secret.get_secret_value())  # blanked out of any log line that might show it
    certificate = parsed.credential == "certificate"
    try:
        expires = public_certificate(portal).not_after.date() if certificate else parsed.expires
    except ApsisError:
        return await _setup_page(request, visit, status=400, submitted=submitted, error=explain.NO_CERTIFICATE)
    account = Account.build(
        id=record.id,
        name=record.name,
        domains=record.domains,
        it_contact_name=record.it_contact.name,
        it_contact_email=record.it_contact.email,
        tenant_id=parsed.tenant,
        client_id=parsed.client_id,
        secret_expires=expires,
        pilot=parsed.test_users,
        client_secret=parsed.secret,
        credential=parsed.credential,
    )
    try:
        created = await portal.call(onboarding.create, portal.settings, account, require_graph_access=True)
    except SetupInProgress:
        # Another submission through the link got there first: like a second one after it.
        _audit(portal, request, "setup-submitted", record, visit.invitation, "refused", reason="concurrent")
        raise Refused(explain.SETUP_BUSY) from None
    except DomainsNotProven as exc:
        return await _not_owned(request, visit, exc, submitted, parsed.tenant, parsed.client_id)
    except ApsisError as exc:
        text = _refusal_text(request, visit, "setup-submitted", exc, parsed.tenant, parsed.client_id)
        return await _setup_page(request, visit, status=400, submitted=submitted, error=text)
    done = await portal.call(onboarding.load, record.id)
    _audit(
        portal,
        request,
        "setup-submitted",
        done,
        visit.invitation,
        "ok",
        tenant=done.tenant_id,
        client_id=done.client_id,
        test_users=len(parsed.test_users),
        secret_hint=done.secret_hint,
    )
    await portal.call(lambda _api: notify.setup_submitted(portal.mail, done, parsed.test_users))
    warnings = [w for w in created.warnings if not w.startswith("test user ")]  # the page lists test users itself
    return await _setup_page(request, Visit(done, visit.invitation, visit.session), warnings=warnings)


def _refusal_text(
    request: Request, visit: Visit, action: AuditAction, exc: ApsisError, tenant: str, client_id: str
) -> str:
    """Entra or the library said no (audited): the reason in plain words, for the form again
    (nothing was changed: the library refuses before its first write). Entra's refusals are
    the customer's to fix and are explained; anything else (a conflict in Keycloak, a realm
    applied with another public URL) is ours: the text says so and the log has the operator's
    line. A temporary failure is ``Refused`` with the page that says to try again later."""
    portal = portal_of(request)
    if is_temporary(exc):
        _audit(
            portal,
            request,
            action,
            visit.record,
            visit.invitation,
            "failed",
            reason="unavailable",
            error=redaction.scrub(exc.format_message()),
        )
        raise Refused(UNAVAILABLE) from None
    if isinstance(exc, EntraRefused):
        reason, text = exc.reason, explain.entra_refusal(exc, tenant, client_id)
        _audit(portal, request, action, visit.record, visit.invitation, "refused", reason=reason)
    else:
        text = "We could not finish this on our side, and have been told; nothing was changed. Please try again later."
        log.error(
            "action failed",
            extra={"account": visit.record.id, "action": action, "error": redaction.scrub(exc.format_message())},
        )
        _audit(
            portal,
            request,
            action,
            visit.record,
            visit.invitation,
            "failed",
            reason="error",
            error=redaction.scrub(exc.format_message()),
        )
    return text


async def _not_owned(
    request: Request, visit: Visit, exc: DomainsNotProven, submitted: forms.Submitted, tenant: str, client_id: str
) -> Response:
    """The tenant does not own every domain of the account: nothing was created. The page says
    which domain and what to do; the audit trail and the platform team record it (whoever
    holds a setup link could try another tenant)."""
    portal = portal_of(request)
    resolved = exc.verdicts[0].tenant_id if exc.verdicts else tenant
    domains = [{"domain": v.domain, "status": v.status, "owner": v.owner} for v in exc.verdicts]
    _audit(
        portal,
        request,
        "setup-submitted",
        visit.record,
        visit.invitation,
        "refused",
        reason="domain-ownership",
        tenant=resolved,
        client_id=client_id,
        domains=domains,
    )
    await portal.call(
        lambda _api: notify.setup_refused(
            portal.mail, visit.record, resolved, client_id, exc.verdicts, _client(request)
        )
    )
    text = explain.domain_refusal(exc.verdicts, resolved, portal.mail.platform_team_email)
    return await _setup_page(request, visit, status=400, submitted=submitted, error=text)


async def ready(request: Request) -> Response:
    """ "Ready for everyone": the setup link's intent is done. The platform team is told (or,
    with ``APSIS_PORTAL_GO_LIVE``, the account goes live here and now)."""
    portal = portal_of(request)
    found = await visit(request, "setup")
    await submission(request, found, "ready")
    record = found.record
    if _needs_form(record) or record.stage != "pilot":
        return RedirectResponse("/setup", status_code=303)
    tested = await portal.call(results.read, record)
    signed_in = [r.email for r in tested if r.ok]
    if not signed_in:
        _audit(portal, request, "ready", record, found.invitation, "refused", reason="no-test-sign-in")
        return await _setup_page(
            request,
            found,
            status=409,
            error=(
                "None of your test users has signed in through single sign-on yet. Send them the test-login link, "
                "and declare it ready once it worked."
            ),
        )
    try:
        if portal.portal.go_live:
            await portal.call(onboarding.set_stage, portal.settings, record.id, "live")
        await portal.call(invitations.complete, record, found.invitation)
    except ApsisError as exc:
        if is_temporary(exc):
            raise Refused(UNAVAILABLE) from None
        raise
    _audit(
        portal,
        request,
        "ready",
        record,
        found.invitation,
        "ok",
        went_live=portal.portal.go_live,
        test_users_signed_in=len(signed_in),
    )
    await portal.call(lambda _api: notify.ready(portal.mail, record, signed_in, portal.portal.go_live))
    response = portal.page(request, "done.html", record=record, intent="setup", went_live=portal.portal.go_live)
    response.headers.append("set-cookie", portal.sessions.clear_header())
    return response


# -- renewal --------------------------------------------------------------------------------


def public_certificate(portal: Portal) -> PublicCertificate:
    """APSIS's public certificate customers upload (``APSIS_SSO_ASSERTION_KEY_FILE``)."""
    return assertion_keys.certificate(portal.settings)


def _certificate_or_none(portal: Portal) -> PublicCertificate | None:
    try:
        return public_certificate(portal)
    except ApsisError:
        return None


async def certificate_file(request: Request) -> Response:
    """The public certificate as a file to upload in Entra (not a secret: no link needed)."""
    cert = _certificate_or_none(portal_of(request))
    if cert is None:
        return Response("No certificate is published.\n", status_code=404, media_type="text/plain")
    return Response(
        cert.pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="apsis-sso.cer"'},
    )


def _renew_page(
    request: Request,
    visit: Visit,
    *,
    status: int = 200,
    submitted: forms.Submitted | None = None,
    error: str | None = None,
) -> Response:
    return portal_of(request).page(
        request,
        "renew.html",
        status,
        certificate=_certificate_or_none(portal_of(request)),
        record=visit.record,
        invitation=visit.invitation,
        csrf=visit.session.csrf,
        values=submitted.values if submitted else {},
        errors=submitted.errors if submitted else {},
        error=error,
    )


async def renew(request: Request) -> Response:
    portal = portal_of(request)
    found = await visit(request, "renew")
    if request.method != "POST":
        return _renew_page(request, found)
    form = await submission(request, found, "renewal-submitted")
    record = found.record
    if forms.credential_choice(_fields(form)) == "certificate":
        return await _switch_to_certificate(request, found)
    submitted, parsed = forms.read_renew(_fields(form))
    if parsed is None:
        _audit(
            portal,
            request,
            "renewal-submitted",
            record,
            found.invitation,
            "refused",
            reason="form",
            fields=sorted(submitted.errors),
        )
        return _renew_page(request, found, status=400, submitted=submitted)
    redaction.remember(parsed.secret.get_secret_value())
    try:
        await portal.call(
            onboarding.rotate_secret, portal.settings, record.id, parsed.secret.get_secret_value(), parsed.expires
        )
        await portal.call(invitations.complete, record, found.invitation)
    except ApsisError as exc:
        text = _refusal_text(request, found, "renewal-submitted", exc, record.tenant_id, record.client_id)
        return _renew_page(request, found, status=400, submitted=submitted, error=text)
    done = await portal.call(onboarding.load, record.id)
    _audit(
        portal,
        request,
        "renewal-submitted",
        done,
        found.invitation,
        "ok",
        secret_hint=done.secret_hint,
        secret_expires=parsed.expires.isoformat(),
        previous_hint=record.secret_hint,
    )
    await portal.call(
        lambda _api: notify.renewed(portal.mail, done, done.secret_hint or "", parsed.expires, record.secret_hint)
    )
    response = portal.page(
        request, "done.html", record=done, intent="renew", old_hint=record.secret_hint, expires=parsed.expires
    )
    response.headers.append("set-cookie", portal.sessions.clear_header())
    return response


async def _switch_to_certificate(request: Request, found: Visit) -> Response:
    """The renewal link's other way: move the account to APSIS's certificate (uploaded by the IT
    contact first; proved with Entra before the switch), after which no secret is needed."""
    portal = portal_of(request)
    record = found.record
    try:
        await portal.call(onboarding.switch_credential, portal.settings, record.id, "certificate")
        await portal.call(invitations.complete, record, found.invitation)
    except ApsisError as exc:
        text = _refusal_text(request, found, "renewal-submitted", exc, record.tenant_id, record.client_id)
        return _renew_page(request, found, status=400, error=text)
    done = await portal.call(onboarding.load, record.id)
    _audit(portal, request, "renewal-submitted", done, found.invitation, "ok", credential="certificate")
    response = portal.page(
        request,
        "done.html",
        record=done,
        intent="certificate",
        old_hint=record.secret_hint,
        expires=done.secret_expires,
    )
    response.headers.append("set-cookie", portal.sessions.clear_header())
    return response


__all__ = ["home", "healthz", "readyz", "open_link", "setup", "ready", "renew", "certificate_file"]
