package com.apsis.sso.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers {@link SsoGuardAuthenticator} as {@value #PROVIDER_ID} for the post-broker-login flow. */
public class SsoGuardAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "apsis-sso-guard";

    private static final SsoGuardAuthenticator SINGLETON = new SsoGuardAuthenticator();

    @Override
    public Authenticator create(KeycloakSession session) {
        return SINGLETON;
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "APSIS: check account membership and SSO stage";
    }

    @Override
    public String getHelpText() {
        return "On every login through an identity provider, lets the user in only if the provider's organization"
                + " has SSO enabled, the user is an enabled member, and (in pilot) on the pilot list."
                + " Otherwise shows an error page and records the event apsis_sso_refused.";
    }

    /** Same category as the safe-link authenticator, for the same brute-force reason. */
    @Override
    public String getReferenceCategory() {
        return SafeLinkAuthenticatorFactory.CATEGORY;
    }

    @Override
    public boolean isConfigurable() {
        return false;
    }

    @Override
    public Requirement[] getRequirementChoices() {
        return SafeLinkAuthenticatorFactory.REQUIREMENTS;
    }

    @Override
    public boolean isUserSetupAllowed() {
        return false;
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.of();
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
}
