package com.apsis.sso.keycloak;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.authenticators.broker.AbstractIdpAuthenticator;
import org.keycloak.authentication.authenticators.broker.util.SerializedBrokeredIdentityContext;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.models.FederatedIdentityModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * First-broker-login: links the brokered Entra identity to the one existing user it belongs to,
 * or refuses. Replaces Keycloak's idp-detect-existing-broker-user + idp-auto-link pair: the first
 * finds the user realm-wide by email or username, the second links whoever it found without
 * checking that user's email verification, which in a realm shared by every account would let a
 * user of one tenant take over an account of another. Never creates a user, never shows a review
 * page; the rules are in {@link LinkPolicy}.
 */
public class SafeLinkAuthenticator extends AbstractIdpAuthenticator {

    private static final Logger LOG = Logger.getLogger(SafeLinkAuthenticator.class);

    /** Auth note IdentityBrokerService sets to the Entra username before this flow starts. */
    static final String ATTEMPTED_USERNAME = "ATTEMPTED_USERNAME";

    static final String EDOV_CLAIM = "xms_edov";

    @Override
    protected void authenticateImpl(AuthenticationFlowContext context, SerializedBrokeredIdentityContext serializedCtx,
                                    BrokeredIdentityContext brokerContext) {
        KeycloakSession session = context.getSession();
        RealmModel realm = context.getRealm();
        String alias = brokerContext.getIdpConfig().getAlias();
        OrganizationModel organization = Accounts.organizationOf(session, brokerContext.getIdpConfig());
        String email = brokerContext.getEmail();
        Map<String, UserModel> found = new HashMap<>();

        ProviderKind kind = ProviderKind.of(brokerContext.getIdpConfig());
        LinkDecision decision = LinkPolicy.link(Accounts.accountOf(organization), kind, email,
                Claims.sent(brokerContext, kind.emailVerifiedClaim()), brokerContext.getId(),
                e -> candidates(session, realm, organization, alias, e, found));

        if (decision.allowed()) {
            UserModel user = found.get(decision.userId());
            LOG.debugf("Linking identity from %s to user %s", alias, user.getId());
            context.setUser(user);
            context.success();
            return;
        }
        // No user is set, and without this note Keycloak's failure logging does not look one up
        // by the Entra username either (that lookup can even fail on duplicate emails).
        context.getAuthenticationSession().removeAuthNote(ATTEMPTED_USERNAME);
        // A second tab of the same person waiting for this login's link gets its own answer now.
        FirstLogins.release(session, realm, alias, brokerContext.getId());
        Refusals.refuse(context, decision.reason(), kind, alias, email, null);
    }

    /** Realm users with this email (exact, case-insensitive; service accounts excluded). */
    private static List<Candidate> candidates(KeycloakSession session, RealmModel realm, OrganizationModel organization,
                                              String alias, String email, Map<String, UserModel> found) {
        Map<String, String> query = Map.of(
                UserModel.EMAIL, email.trim(),
                UserModel.EXACT, Boolean.TRUE.toString(),
                UserModel.INCLUDE_SERVICE_ACCOUNT, Boolean.FALSE.toString());
        return session.users().searchForUserStream(realm, query)
                .filter(user -> user.getEmail() != null && Ascii.equalsIgnoreCase(user.getEmail(), email.trim()))
                .map(user -> {
                    found.put(user.getId(), user);
                    FederatedIdentityModel link = session.users().getFederatedIdentity(realm, user, alias);
                    return new Candidate(user.getId(), user.getEmail(), user.isEnabled(),
                            Accounts.isMember(session, organization, user), link == null ? null : link.getUserId());
                })
                .collect(Collectors.toList());
    }

    @Override
    protected void actionImpl(AuthenticationFlowContext context, SerializedBrokeredIdentityContext serializedCtx,
                              BrokeredIdentityContext brokerContext) {
        // No form of our own: a post to this execution is decided exactly like the first request.
        authenticateImpl(context, serializedCtx, brokerContext);
    }

    @Override
    public boolean requiresUser() {
        return false;
    }

    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        return false;
    }
}
