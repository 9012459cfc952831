package com.apsis.sso.keycloak;

import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.UriInfo;

import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.AuthenticationProcessor;
import org.keycloak.constants.AdapterConstants;
import org.keycloak.events.Details;
import org.keycloak.events.EventBuilder;
import org.keycloak.forms.login.LoginFormsProvider;
import org.keycloak.models.Constants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.UserModel;
import org.keycloak.models.utils.FormMessage;
import org.keycloak.services.resources.LoginActionsService;
import org.keycloak.sessions.AuthenticationSessionModel;

/** How SSO is refused: one login error event, and an error page a person understands. */
final class Refusals {

    private static final Logger LOG = Logger.getLogger(Refusals.class);

    static final String REASON_DETAIL = Details.REASON;

    /** Under the reason's sentence: the way to the password form (Keycloak restarts the login). */
    static final String PASSWORD_INSTEAD_MESSAGE = "apsisSso.password_instead";

    private Refusals() {
    }

    /**
     * Refuses inside an authentication flow (safe-link, guard): records {@code apsis_sso_refused}
     * and shows the reason's sentence with a link to sign in with the password instead.
     *
     * <p>The event goes out on a clone of the flow's event builder: LoginActionsService calls
     * {@code success()} on the original after the flow returns, which would send an error
     * raised on it a second time. Brute-force protection is not touched: failureChallenge
     * reports a failure under our factories' reference category {@code apsis-sso}, which
     * Keycloak's protector ignores (it counts only password, otp and recovery codes).
     *
     * @param user the user the refusal concerns, or null (first login: nobody is linked yet)
     */
    static void refuse(AuthenticationFlowContext context, Reason reason, String idpAlias, String email,
                       UserModel user) {
        refuse(context, reason, ProviderKind.ENTRA, idpAlias, email, user);
    }

    static void refuse(AuthenticationFlowContext context, Reason reason, ProviderKind kind, String idpAlias,
                       String email, UserModel user) {
        record(context.getEvent().clone(), reason, idpAlias, email, user);
        Response page = page(context.getSession(), context.getAuthenticationSession(), context.getUriInfo(), reason,
                kind);
        context.failureChallenge(AuthenticationFlowError.ACCESS_DENIED, page);
    }

    /** The login error event every refusal records, wherever it happens. */
    static void record(EventBuilder event, Reason reason, String idpAlias, String email, UserModel user) {
        LOG.debugf("SSO refused via %s: %s", idpAlias, reason.code());
        event.detail(REASON_DETAIL, reason.code()).detail(Details.IDENTITY_PROVIDER, idpAlias);
        if (email != null && !email.isBlank()) {
            event.detail(Details.EMAIL, email);
        }
        if (user != null) {
            event.user(user);
        }
        event.error(Reason.EVENT_ERROR);
    }

    /**
     * The refusal page (HTTP 403). Every sentence ends with "sign in with your APSIS One
     * password", and an address in a live account's domains is sent to Entra from the login
     * page, so the page links to the restarted login with the domain redirect switched off for
     * this login ({@link IdentityFirstAuthenticator#PASSWORD_CHOSEN_NOTE}).
     */
    static Response page(KeycloakSession session, AuthenticationSessionModel authSession, UriInfo uri, Reason reason) {
        return page(session, authSession, uri, reason, ProviderKind.ENTRA);
    }

    /** The same, in the words of the account's provider kind ("your Okta account"). */
    static Response page(KeycloakSession session, AuthenticationSessionModel authSession, UriInfo uri, Reason reason,
                         ProviderKind kind) {
        LoginFormsProvider form = session.getProvider(LoginFormsProvider.class)
                .setAuthenticationSession(authSession)
                .addError(new FormMessage(null, reason.messageKey(kind)));
        if (reason.passwordHelps() && authSession != null && authSession.getClient() != null) {
            authSession.setClientNote(IdentityFirstAuthenticator.PASSWORD_CHOSEN_NOTE, Boolean.TRUE.toString());
            // The test-login link's kc_idp_hint would send the restarted login straight back to Entra.
            authSession.removeClientNote(AdapterConstants.KC_IDP_HINT);
            String restart = LoginActionsService.loginActionsBaseUrl(uri)
                    .path(LoginActionsService.RESTART_PATH)
                    .queryParam(Constants.CLIENT_ID, authSession.getClient().getClientId())
                    .queryParam(Constants.TAB_ID, authSession.getTabId())
                    .queryParam(Constants.CLIENT_DATA, AuthenticationProcessor.getClientData(session, authSession))
                    .build(session.getContext().getRealm().getName())
                    .toString();
            form.addError(new FormMessage(null, PASSWORD_INSTEAD_MESSAGE, restart));
        }
        return form.createErrorPage(Response.Status.FORBIDDEN);
    }
}
