package com.apsis.sso.keycloak;

import java.util.stream.Stream;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.utils.ModelToRepresentation;
import org.keycloak.representations.idm.IdentityProviderMapperRepresentation;

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
 * <p>Who may: whoever may list the realm's identity providers in the Admin API
 * ({@code view-identity-providers}, judged from the token by {@link AdminAccess}); anyone else
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
        AdminAccess.of(session).realm().requireViewIdentityProviders();
        return session.identityProviders().getMappersStream().map(ModelToRepresentation::toRepresentation);
    }
}
