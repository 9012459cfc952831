package com.apsis.sso.keycloak;

import org.keycloak.authentication.Authenticator;
import org.keycloak.models.KeycloakSession;

/** Registers {@link SafeLinkAuthenticator} as {@value #PROVIDER_ID} for the first-broker-login flow. */
public class SafeLinkAuthenticatorFactory extends ApsisAuthenticatorFactory {

    public static final String PROVIDER_ID = Contract.SAFE_LINK_AUTHENTICATOR;

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
}
