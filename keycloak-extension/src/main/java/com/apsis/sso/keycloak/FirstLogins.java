package com.apsis.sso.keycloak;

import org.jboss.logging.Logger;
import org.keycloak.models.AbstractKeycloakTransaction;
import org.keycloak.models.ClientModel;
import org.keycloak.models.FederatedIdentityModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.SingleUseObjectProvider;
import org.keycloak.models.UserModel;
import org.keycloak.sessions.AuthenticationSessionModel;
import org.keycloak.sessions.RootAuthenticationSessionModel;

/**
 * One person's first SSO login, finished in two tabs at once, must end with both tabs signed in
 * as the same user and one link. Keycloak cannot do that by itself: both tabs find no link,
 * both run first-broker-login, and the second one's "add the link" fails, showing
 * {@code identityProviderAlreadyLinkedToCurrentUser}. So the first tab to come back from Entra
 * claims the person's first login (a cluster-wide single-use key, with its owner next to it);
 * a tab that finds the claim taken waits for the link to appear, and then goes Keycloak's
 * ordinary way for a linked user.
 *
 * <p>The claim ends with the first login, so nobody waits for a link that never comes: it is
 * released when the login is linked or refused ({@link #finished}, after the transaction, so a
 * waiting tab finds the link committed), when first-broker-login or the object id mapper refuses
 * ({@link #release}), and when its request fails. A claim whose owner's authentication session no
 * longer exists (abandoned, or ended some other way) is taken over at once ({@link ClaimOwner}).
 * {@link #CLAIM_SECONDS} only bounds what none of these catch.
 */
final class FirstLogins {

    private static final Logger LOG = Logger.getLogger(FirstLogins.class);

    /** How long a claim lives at most: longer than any first login takes (a few redirects). */
    static final long CLAIM_SECONDS = 30;
    /** How long a second tab waits for the first one's link before going on by itself. */
    static final long WAIT_MILLIS = 10_000;
    static final long POLL_MILLIS = 100;

    /** Client note on the owner's authentication session: the key of the claim it holds. */
    static final String CLAIM_NOTE = "apsis.firstLoginClaim";
    private static final String OWNER_SUFFIX = ":owner";

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
     * Called before Keycloak looks the link up, when none exists yet. Returns at once when this
     * is the only first login of the person in flight (it then holds the claim); otherwise when
     * the other one linked or ended, or after {@link #WAIT_MILLIS}.
     */
    static void awaitConcurrent(KeycloakSession session, RealmModel realm, String alias, String entraId,
                                AuthenticationSessionModel authSession) {
        String key = key(realm, alias, entraId);
        ClaimOwner me = authSession == null ? null : ownerOf(authSession);
        long deadline = System.currentTimeMillis() + WAIT_MILLIS;
        boolean waited = false;
        for (int round = 0; ; round++) {
            if (round > 0 && linked(session, realm, alias, entraId) != null) {
                return;
            }
            if (claim(session, key, me, authSession)) {
                return;
            }
            ClaimOwner owner = ClaimOwner.of(session.singleUseObjects().get(key + OWNER_SUFFIX));
            switch (ClaimOwner.decide(owner, me, owner != null && exists(session, realm, owner))) {
                case OWN -> {
                    return;
                }
                case TAKE_OVER -> {
                    LOG.debugf("A first login through %s held a claim for a login that no longer exists: taken over", alias);
                    remove(session.singleUseObjects(), key);
                    if (System.currentTimeMillis() < deadline) {
                        continue;
                    }
                    return;
                }
                default -> {
                }
            }
            if (System.currentTimeMillis() >= deadline) {
                LOG.infof("A first login through %s went on after waiting %d ms for another one of the same person",
                        alias, WAIT_MILLIS);
                return;
            }
            if (!waited) {
                LOG.infof("A first login through %s waits for another first login of the same person", alias);
                waited = true;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static boolean claim(KeycloakSession session, String key, ClaimOwner me, AuthenticationSessionModel authSession) {
        SingleUseObjectProvider claims = session.singleUseObjects();
        if (!claims.putIfAbsent(key, CLAIM_SECONDS)) {
            return false;
        }
        if (me != null) {
            claims.put(key + OWNER_SUFFIX, CLAIM_SECONDS, me.notes()); // visible when this request commits
            authSession.setClientNote(CLAIM_NOTE, key);
        }
        // A request that fails after claiming ends this login too.
        session.getTransactionManager().enlistAfterCompletion(new AbstractKeycloakTransaction() {
            @Override
            protected void commitImpl() {
            }

            @Override
            protected void rollbackImpl() {
                remove(claims, key);
            }
        });
        return true;
    }

    /**
     * The login of this authentication session ended linked or refused (Keycloak is about to
     * create its session, or a refusal is thrown): its claim, if it holds one, is released once
     * the transaction is over, so a waiting tab finds the link committed.
     */
    static void finished(KeycloakSession session, AuthenticationSessionModel authSession) {
        String key = authSession == null ? null : authSession.getClientNote(CLAIM_NOTE);
        if (key == null) {
            return;
        }
        authSession.removeClientNote(CLAIM_NOTE);
        SingleUseObjectProvider claims = session.singleUseObjects();
        session.getTransactionManager().enlistAfterCompletion(new AbstractKeycloakTransaction() {
            @Override
            protected void commitImpl() {
                remove(claims, key);
            }

            @Override
            protected void rollbackImpl() {
                remove(claims, key);
            }
        });
    }

    /**
     * The first login ended without a link (refused in first-broker-login or by the object id
     * mapper): nobody needs to wait for it. Releases the claim of the login in the session's
     * context when it holds it (any claim on the key when there is no such login).
     */
    static void release(KeycloakSession session, RealmModel realm, String alias, String entraId) {
        if (entraId == null || session == null || realm == null) {
            return; // no login to end (the mapper's unit tests call it without a server)
        }
        String key = key(realm, alias, entraId);
        AuthenticationSessionModel authSession = session.getContext().getAuthenticationSession();
        if (authSession == null) {
            remove(session.singleUseObjects(), key);
            return;
        }
        if (key.equals(authSession.getClientNote(CLAIM_NOTE))) {
            authSession.removeClientNote(CLAIM_NOTE);
        }
        releaseIfOwned(session.singleUseObjects(), key, ownerOf(authSession));
    }

    private static void releaseIfOwned(SingleUseObjectProvider claims, String key, ClaimOwner me) {
        ClaimOwner owner = ClaimOwner.of(claims.get(key + OWNER_SUFFIX));
        if (owner == null || owner.equals(me)) {
            remove(claims, key);
        }
    }

    private static void remove(SingleUseObjectProvider claims, String key) {
        claims.remove(key);
        claims.remove(key + OWNER_SUFFIX);
    }

    private static ClaimOwner ownerOf(AuthenticationSessionModel authSession) {
        return new ClaimOwner(authSession.getParentSession().getId(), authSession.getTabId(),
                authSession.getClient().getId());
    }

    private static boolean exists(KeycloakSession session, RealmModel realm, ClaimOwner owner) {
        RootAuthenticationSessionModel root = session.authenticationSessions().getRootAuthenticationSession(realm,
                owner.rootSessionId());
        ClientModel client = root == null ? null : realm.getClientById(owner.clientId());
        return client != null && root.getAuthenticationSession(client, owner.tabId()) != null;
    }
}
