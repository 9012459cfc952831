package com.apsis.sso.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/**
 * What both apsis authenticator factories share: REQUIRED or DISABLED, nothing to configure,
 * no user setup, and a reference category outside Keycloak's brute-force categories.
 */
abstract class ApsisAuthenticatorFactory implements AuthenticatorFactory {

    /**
     * Reference category of both authenticators. It must stay outside Keycloak's brute-force
     * categories (password, otp, recovery-authn-codes): a refusal is then never counted as a
     * failed login, so it cannot lock anybody's password login.
     */
    public static final String CATEGORY = "apsis-sso";

    static final Requirement[] REQUIREMENTS = {Requirement.REQUIRED, Requirement.DISABLED};

    @Override
    public String getReferenceCategory() {
        return CATEGORY;
    }

    @Override
    public boolean isConfigurable() {
        return false;
    }

    @Override
    public Requirement[] getRequirementChoices() {
        return REQUIREMENTS;
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
