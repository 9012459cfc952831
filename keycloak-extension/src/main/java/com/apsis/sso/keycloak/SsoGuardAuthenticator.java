package com.apsis.sso.keycloak;

import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.AuthenticationFlowException;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.authenticators.broker.util.SerializedBrokeredIdentityContext;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * Post-broker-login: on every SSO login (also right after the first one) re-checks that the
 * linked user may still use SSO for the identity provider's account, so removing a member,
 * disabling SSO or going back to pilot takes effect at once. It deliberately ignores the
 * token's email: the link is by Entra object id, and the email in Entra may change.
 */
public class SsoGuardAuthenticator implements Authenticator {

    /** Auth note where IdentityBrokerService keeps the brokered context for this flow. */
    static final String PBL_BROKERED_IDENTITY_CONTEXT = "PBL_BROKERED_IDENTITY_CONTEXT";

    /** User session note naming the account (organization alias) of an allowed SSO login. */
    static final String ACCOUNT_NOTE = "apsis.account";

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
        OrganizationModel organization = Accounts.organizationOf(session, idp);
        boolean member = organization != null && Accounts.isMember(session, organization, user);

        LinkDecision decision = LinkPolicy.guard(Accounts.accountOf(organization), user.getId(),
                user.isEnabled(), member, user.getEmail());
        if (decision.allowed()) {
            // Tell the application which APSIS account this SSO session belongs to
            // (the realm's apsis-one client maps this note to the apsis_account claim).
            context.getAuthenticationSession().setUserSessionNote(ACCOUNT_NOTE, organization.getAlias());
            context.success();
        } else {
            Refusals.refuse(context, decision.reason(), idp.getAlias(), user.getEmail(), user);
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
