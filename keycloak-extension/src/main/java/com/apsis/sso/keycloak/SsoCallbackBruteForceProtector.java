package com.apsis.sso.keycloak;

import java.util.Set;

import jakarta.ws.rs.core.UriInfo;

import org.keycloak.common.ClientConnection;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.managers.BruteForceProtector;

/**
 * Keycloak's brute-force protector, except for the broker callback of an apsis-sso identity
 * provider: there a user counts as locked only when the failure record says so.
 *
 * <p>Why: Keycloak's default protector ({@code DefaultBlockingBruteForceProtector}, on unless
 * {@code allowConcurrentRequests}) answers {@code isTemporarilyDisabled} with true whenever a
 * login of the same user is in flight on another thread, so that parallel password guesses
 * cannot outrun the failure counter. {@code IdentityBrokerService#validateUser} asks it on every
 * returning brokered login, so several tabs or devices of one person coming back from Entra at
 * once were refused with {@code user_temporarily_disabled} (numFailures 0) although no password
 * was typed. A broker callback proves the person through Entra's code and checks no password,
 * so the in-flight rule has nothing to protect there; password, OTP and recovery-code steps
 * (every other request) keep Keycloak's protector unchanged, and a user locked by wrong
 * passwords stays locked for SSO too, as in Keycloak.
 *
 * <p>Which requests: those {@link EntraIdentityProvider} marked with {@link #markSsoCallback}
 * while preprocessing Entra's answer, right before Keycloak looks the linked user up.
 */
final class SsoCallbackBruteForceProtector implements BruteForceProtector {

    /** Session attribute: this request is the broker callback of an apsis-sso identity provider. */
    static final String SSO_CALLBACK_ATTRIBUTE = "apsis.ssoCallback";

    private final BruteForceProtector keycloaks;
    private final BruteForceProtector failureRecordOnly;

    SsoCallbackBruteForceProtector(BruteForceProtector keycloaks, BruteForceProtector failureRecordOnly) {
        this.keycloaks = keycloaks;
        this.failureRecordOnly = failureRecordOnly;
    }

    /** Marks the current request as an SSO callback of ours (its session ends with the request). */
    static void markSsoCallback(KeycloakSession session) {
        session.setAttribute(SSO_CALLBACK_ATTRIBUTE, Boolean.TRUE);
    }

    static boolean isSsoCallback(KeycloakSession session) {
        return Boolean.TRUE.equals(session.getAttribute(SSO_CALLBACK_ATTRIBUTE));
    }

    private BruteForceProtector forRequest(KeycloakSession session) {
        return isSsoCallback(session) ? failureRecordOnly : keycloaks;
    }

    @Override
    public boolean isTemporarilyDisabled(KeycloakSession session, RealmModel realm, UserModel user) {
        return forRequest(session).isTemporarilyDisabled(session, realm, user);
    }

    @Override
    public boolean isPermanentlyLockedOut(KeycloakSession session, RealmModel realm, UserModel user) {
        return forRequest(session).isPermanentlyLockedOut(session, realm, user);
    }

    @Override
    public void failedLogin(RealmModel realm, UserModel user, ClientConnection clientConnection, UriInfo uriInfo,
                            Set<String> authenticationCategories) {
        keycloaks.failedLogin(realm, user, clientConnection, uriInfo, authenticationCategories);
    }

    @Override
    public void successfulLogin(RealmModel realm, UserModel user, ClientConnection clientConnection, UriInfo uriInfo,
                                Set<String> authenticationCategories) {
        keycloaks.successfulLogin(realm, user, clientConnection, uriInfo, authenticationCategories);
    }

    @Override
    public void cleanUpPermanentLockout(KeycloakSession session, RealmModel realm, UserModel user) {
        keycloaks.cleanUpPermanentLockout(session, realm, user);
    }

    @Override
    public void close() {
    }
}
