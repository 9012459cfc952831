package com.apsis.sso.keycloak;

import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.oidc.OIDCIdentityProviderConfig;
import org.keycloak.broker.oidc.OIDCIdentityProviderFactory;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;

/**
 * Keycloak's "oidc" identity provider factory, registered under the same id so that it replaces
 * Keycloak's (a custom factory wins over a built-in one with the same id: Keycloak's
 * {@code ProviderManager#compareFactories}). It hands out {@link EntraIdentityProvider} for the
 * providers apsis-sso manages (config {@code apsis.managedBy = apsis-sso}) and Keycloak's own
 * {@link OIDCIdentityProvider}, unchanged, for every other one.
 *
 * <p>Why not an identity-provider type of our own: the admin-consent answer must reach the one
 * redirect URI the customer registered, the broker endpoint of the account's existing provider,
 * whose type is "oidc". Keycloak cannot change a provider's type in place (its update keeps the
 * type), and re-creating the provider would drop every user's link and need the client secret,
 * which Keycloak never gives back. Keeping the type makes every existing account get the new
 * behaviour with no migration.
 */
public class EntraIdentityProviderFactory extends OIDCIdentityProviderFactory {

    /** The provider's config key and value that mark it as ours (docs/contracts.md). */
    public static final String MANAGED_BY_KEY = Contract.MANAGED_BY_KEY;
    public static final String MANAGED_BY = Contract.MANAGED_BY;

    @Override
    public OIDCIdentityProvider create(KeycloakSession session, IdentityProviderModel model) {
        OIDCIdentityProviderConfig config = new OIDCIdentityProviderConfig(model);
        if (isManaged(model)) {
            return new EntraIdentityProvider(session, config);
        }
        return new OIDCIdentityProvider(session, config);
    }

    static boolean isManaged(IdentityProviderModel model) {
        return model != null && model.getConfig() != null && MANAGED_BY.equals(model.getConfig().get(MANAGED_BY_KEY));
    }
}
