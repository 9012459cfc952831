package com.apsis.sso.keycloak;

import org.keycloak.authentication.Authenticator;
import org.keycloak.models.KeycloakSession;

/** Registers {@link SsoGuardAuthenticator} as {@value #PROVIDER_ID} for the post-broker-login flow. */
public class SsoGuardAuthenticatorFactory extends ApsisAuthenticatorFactory {

    public static final String PROVIDER_ID = Contract.SSO_GUARD_AUTHENTICATOR;

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
}
