package com.apsis.sso.keycloak;

import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.UserModel;

/**
 * The check every SSO login passes, also a returning one: may this (linked) user still use SSO
 * for the identity provider's account? Removing a member, disabling SSO or going back to pilot
 * takes effect at the next sign-in. It deliberately ignores the token's email: the link is by
 * Entra object id, and the email in Entra may change. Inputs are read here, the decision is
 * {@link LinkPolicy#guard}.
 *
 * <p>Where it runs: {@link EntraIdentityProvider#authenticationFinished}, which Keycloak calls on
 * every brokered login that succeeded (returning or first) just before it creates the session.
 * It ran in a post-broker-login flow before; Keycloak reaches such a flow only through two more
 * browser redirects ({@code /login-actions/post-broker-login} and
 * {@code /broker/after-post-broker-login}), about 30 ms of a returning login's 250, while the
 * checks themselves are an organization read and one membership query. An identity-provider
 * mapper was the other candidate: its hook runs on every login too, but before Keycloak has found
 * the linked user, and a mapper is a row an administrator can delete by hand, silently taking the
 * check with it; the provider is the class Keycloak runs the login with.
 */
final class Guard {

    /** User session note naming the account (organization alias) of an allowed SSO login. */
    static final String ACCOUNT_NOTE = Contract.ACCOUNT_SESSION_NOTE;

    private Guard() {
    }

    /** The decision, and the organization it was made for (null when the IdP has none). */
    record Verdict(LinkDecision decision, OrganizationModel organization) {
    }

    static Verdict check(KeycloakSession session, IdentityProviderModel idp, UserModel user) {
        OrganizationModel organization = Accounts.organizationOf(session, idp);
        boolean member = organization != null && Accounts.isMember(session, organization, user);
        LinkDecision decision = LinkPolicy.guard(Accounts.accountOf(organization), user.getId(),
                user.isEnabled(), member, user.getEmail());
        return new Verdict(decision, organization);
    }
}
