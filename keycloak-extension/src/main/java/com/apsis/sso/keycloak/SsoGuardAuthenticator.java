package com.apsis.sso.keycloak;

import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.AuthenticationFlowException;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.authenticators.broker.util.SerializedBrokeredIdentityContext;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The {@link Guard} as a post-broker-login step, for providers still bound to the
 * {@code apsis post broker login} flow of earlier versions: the guard now runs in
 * {@link EntraIdentityProvider#authenticationFinished} on every SSO login without that flow's
 * two extra redirects, and {@code apsis-sso apply -f} (or any account command) unbinds the flow
 * from a provider. Until then the check simply runs twice.
 */
public class SsoGuardAuthenticator implements Authenticator {

    /** Auth note where IdentityBrokerService keeps the brokered context for this flow. */
    static final String PBL_BROKERED_IDENTITY_CONTEXT = "PBL_BROKERED_IDENTITY_CONTEXT";

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        SerializedBrokeredIdentityContext brokered = SerializedBrokeredIdentityContext
                .readFromAuthenticationSession(context.getAuthenticationSession(), PBL_BROKERED_IDENTITY_CONTEXT);
        if (brokered == null) {
            throw new AuthenticationFlowException("apsis-sso-guard runs only in a post-broker-login flow",
                    AuthenticationFlowError.IDENTITY_PROVIDER_ERROR);
        }
        KeycloakSession session = context.getSession();
        IdentityProviderModel idp = session.identityProviders().getByAlias(brokered.getIdentityProviderId());
        if (idp == null) {
            throw new AuthenticationFlowException("Identity provider " + brokered.getIdentityProviderId()
                    + " not found", AuthenticationFlowError.IDENTITY_PROVIDER_NOT_FOUND);
        }
        UserModel user = context.getUser();
        Guard.Verdict verdict = Guard.check(session, idp, user);
        if (verdict.decision().allowed()) {
            context.getAuthenticationSession().setUserSessionNote(Guard.ACCOUNT_NOTE, verdict.organization().getAlias());
            context.success();
        } else {
            Refusals.refuse(context, verdict.decision().reason(), ProviderKind.of(idp), idp.getAlias(), user.getEmail(),
                    user);
        }
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        authenticate(context);
    }

    @Override
    public boolean requiresUser() {
        return true;
    }

    /** Nothing to set up per user; false would make Keycloak abort with CREDENTIAL_SETUP_REQUIRED. */
    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        return true;
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
    }

    @Override
    public void close() {
    }
}
