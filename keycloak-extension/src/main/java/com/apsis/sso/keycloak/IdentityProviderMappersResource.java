package com.apsis.sso.keycloak;

import java.util.stream.Stream;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.NotAuthorizedException;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.utils.ModelToRepresentation;
import org.keycloak.representations.idm.IdentityProviderMapperRepresentation;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager.AuthResult;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.fgap.AdminPermissions;

/**
 * {@code GET /realms/{realm}/apsis-sso/idp-mappers}: every identity-provider mapper of the realm in one
 * answer, each as the Admin API shows it ({@code .../identity-provider/instances/{alias}/mappers},
 * with {@code identityProviderAlias}).
 *
 * <p>Why: a plan compares each provider's real mappers with the template, so a mapper deleted or
 * changed by hand shows as drift. Keycloak 26 lists mappers per provider only, which made a
 * no-change plan over 10,000 accounts 10,000 requests; Keycloak's store has the realm-wide
 * listing ({@code IdentityProviderStorageProvider#getMappersStream}), its Admin API does not.
 *
 * <p>Who may: a bearer token of this realm whose user holds realm-management's
 * {@code view-identity-providers} (the same right the per-provider listing needs); anyone else
 * gets 401 or 403.
 */
public class IdentityProviderMappersResource {

    private final KeycloakSession session;

    public IdentityProviderMappersResource(KeycloakSession session) {
        this.session = session;
    }

    // @Path("") is not decoration: Quarkus indexes a provider jar's JAX-RS methods only when the jar
    // holds a bean-defining annotation such as @Path; without it this GET answers 405 (keycloak#26835).
    @GET
    @Path("")
    @Produces(MediaType.APPLICATION_JSON)
    public Stream<IdentityProviderMapperRepresentation> list() {
        RealmModel realm = session.getContext().getRealm();
        AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        if (auth == null) {
            throw new NotAuthorizedException("Bearer");
        }
        AdminPermissions.evaluator(session, realm, new AdminAuth(realm, auth.token(), auth.user(), auth.client()))
                .realm().requireViewIdentityProviders();
        return session.identityProviders().getMappersStream().map(ModelToRepresentation::toRepresentation);
    }
}
