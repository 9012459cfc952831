package com.apsis.sso.keycloak;

import jakarta.ws.rs.NotAuthorizedException;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager.AuthResult;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;
import org.keycloak.services.resources.admin.fgap.AdminPermissions;

/**
 * Who calls the apsis-sso resources, judged as Keycloak's Admin API judges its callers
 * ({@code AdminRoot#authenticateRealmAdminRequest}): a valid bearer token of this realm, made
 * into an {@link AdminAuth} from the token, user and client, then Keycloak's admin permission
 * evaluator. The evaluator counts a realm-management role only when the user holds it
 * <em>and</em> the token's client has it in scope ({@code AdminAuth#hasAppRole}), so the token
 * of a client without full scope, or of Keycloak's Account Console, is refused although its
 * user holds {@code view-users}; fine-grained admin permissions apply where the realm has them.
 *
 * <p>Unlike the Admin API, a master-realm administrator's token is not accepted: the daemon and
 * the tooling call with tokens of the realm they read.
 */
final class AdminAccess {

    private AdminAccess() {
    }

    /**
     * The caller's permissions, for its {@code require...} checks (a ForbiddenException is HTTP
     * 403). Throws NotAuthorizedException (HTTP 401) without a valid bearer token of the realm.
     */
    static AdminPermissionEvaluator of(KeycloakSession session) {
        RealmModel realm = session.getContext().getRealm();
        AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        if (auth == null) {
            throw new NotAuthorizedException("Bearer");
        }
        session.getContext().setBearerToken(auth.token());
        return AdminPermissions.evaluator(session, realm, new AdminAuth(realm, auth.token(), auth.user(), auth.client()));
    }
}
