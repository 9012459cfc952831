package com.apsis.sso.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers {@link SafeLinkAuthenticator} as {@value #PROVIDER_ID} for the first-broker-login flow. */
public class SafeLinkAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "apsis-safe-link";

    /**
     * Reference category of both authenticators. It must stay outside Keycloak's brute-force
     * categories (password, otp, recovery-authn-codes): a refusal is then never counted as a
     * failed login, so it cannot lock anybody's password login.
     */
    public static final String CATEGORY = "apsis-sso";

    static final Requirement[] REQUIREMENTS = {Requirement.REQUIRED, Requirement.DISABLED};

    private static final SafeLinkAuthenticator SINGLETON = new SafeLinkAuthenticator();

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
        return "APSIS: link to existing account member";
    }

    @Override
    public String getHelpText() {
        return "Links the brokered identity to the single existing user with the same email, only if that user is"
                + " an enabled member of the identity provider's organization (and on its pilot list while in pilot)."
                + " Otherwise shows an error page and records the event apsis_sso_refused. Never creates users.";
    }

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
