package com.apsis.sso.keycloak;

import org.jboss.logging.Logger;
import org.keycloak.models.FederatedIdentityModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * One person's first SSO login, finished in two tabs at once, must end with both tabs signed in
 * as the same user and one link. Keycloak cannot do that by itself: both tabs find no link,
 * both run first-broker-login, and the second one's "add the link" fails, showing
 * {@code identityProviderAlreadyLinkedToCurrentUser}. So the first tab to come back from Entra
 * claims the person's first login (a cluster-wide single-use key); a tab that finds the claim
 * taken waits for the link to appear, and then goes Keycloak's ordinary way for a linked user.
 * A refusal releases the claim, so the waiting tab gets its own refusal without waiting.
 */
final class FirstLogins {

    private static final Logger LOG = Logger.getLogger(FirstLogins.class);

    /** How long a claim lives: longer than any first login takes (a few redirects). */
    static final long CLAIM_SECONDS = 30;
    /** How long a second tab waits for the first one's link before going on by itself. */
    static final long WAIT_MILLIS = 10_000;
    static final long POLL_MILLIS = 100;

    private FirstLogins() {
    }

    static String key(RealmModel realm, String alias, String entraId) {
        return "apsis-first-login:" + realm.getId() + ":" + alias + ":" + entraId;
    }

    /** The user linked to this identity provider with this Entra id, or null. */
    static UserModel linked(KeycloakSession session, RealmModel realm, String alias, String entraId) {
        return entraId == null ? null
                : session.users().getUserByFederatedIdentity(realm, new FederatedIdentityModel(alias, entraId, null));
    }

    /**
     * Called before Keycloak looks the link up. Returns at once when this is the only first
     * login of the person in flight; otherwise when the other one linked (or gave up).
     */
    static void awaitConcurrent(KeycloakSession session, RealmModel realm, String alias, String entraId) {
        String key = key(realm, alias, entraId);
        if (session.singleUseObjects().putIfAbsent(key, CLAIM_SECONDS)) {
            return;
        }
        LOG.debugf("Another first login through %s is in flight for the same person: waiting for its link", alias);
        long deadline = System.currentTimeMillis() + WAIT_MILLIS;
        while (System.currentTimeMillis() < deadline && session.singleUseObjects().contains(key)) {
            if (linked(session, realm, alias, entraId) != null) {
                return;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** The first login ended without a link (refused): nobody needs to wait for it. */
    static void release(KeycloakSession session, RealmModel realm, String alias, String entraId) {
        if (entraId != null) {
            session.singleUseObjects().remove(key(realm, alias, entraId));
        }
    }
}
