package com.apsis.sso.keycloak;

import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.events.Details;
import org.keycloak.events.EventBuilder;
import org.keycloak.models.UserModel;

/** How both authenticators refuse: one login error event, and an error page a person understands. */
final class Refusals {

    private static final Logger LOG = Logger.getLogger(Refusals.class);

    static final String REASON_DETAIL = Details.REASON;

    private Refusals() {
    }

    /**
     * Records {@code apsis_sso_refused} with the reason and shows the reason's sentence.
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
        LOG.debugf("SSO refused via %s: %s", idpAlias, reason.code());
        EventBuilder event = context.getEvent().clone()
                .detail(REASON_DETAIL, reason.code())
                .detail(Details.IDENTITY_PROVIDER, idpAlias);
        if (email != null && !email.isBlank()) {
            event.detail(Details.EMAIL, email);
        }
        if (user != null) {
            event.user(user);
        }
        event.error(Reason.EVENT_ERROR);
        Response page = context.form().setError(reason.messageKey()).createErrorPage(Response.Status.FORBIDDEN);
        context.failureChallenge(AuthenticationFlowError.ACCESS_DENIED, page);
    }
}
