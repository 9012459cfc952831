package com.apsis.sso.keycloak;

import org.keycloak.Config;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.services.resource.RealmResourceProvider;
import org.keycloak.services.resource.RealmResourceProviderFactory;

/**
 * The extension's one realm resource, {@code /realms/{realm}/}{@value #PROVIDER_ID}: the bulk links
 * and users-by-address reads ({@link LinksResource}) and the realm-wide IdP mapper listing
 * ({@link IdentityProviderMappersResource}, at {@value LinksResource#IDP_MAPPERS}).
 */
public class ApsisSsoResourceProviderFactory implements RealmResourceProviderFactory {

    public static final String PROVIDER_ID = Contract.LINKS_RESOURCE;

    @Override
    public RealmResourceProvider create(KeycloakSession session) {
        return new RealmResourceProvider() {
            @Override
            public Object getResource() {
                return new LinksResource(session);
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }
}
