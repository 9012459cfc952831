package com.apsis.sso.keycloak;

/**
 * An Okta sign-in is bound to the account's org by its issuer: each org, and each custom
 * authorization server of an org, has its own ({@code https://{org}.okta.com},
 * {@code https://{org}.okta.com/oauth2/{id}}). Compared exactly, as OpenID Connect Core 3.1.3.7
 * asks: no trailing-slash, case or prefix leniency, so another org's token (or another server's
 * of the same org) never passes. Pure, unit-tested in {@code IssuerBindingTest}.
 */
public final class IssuerBinding {

    private IssuerBinding() {
    }

    /** The token's {@code iss} is the configured issuer, character for character. */
    public static boolean bound(String configured, String tokenIssuer) {
        return configured != null && !configured.isBlank() && configured.equals(tokenIssuer);
    }
}
