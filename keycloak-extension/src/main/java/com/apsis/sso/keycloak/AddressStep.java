package com.apsis.sso.keycloak;

/**
 * What the login page's identity-first step does with an address typed into it (or passed as
 * {@code login_hint}), free of Keycloak types.
 *
 * <p>The rule: the answer depends on the address's domain only, never on whether a user with
 * that address exists, is disabled or belongs to an account. Keycloak's own organization step
 * answers an unknown address in an organization's domain with "Your email domain matches an
 * organization but you don't have an account yet" and an existing one with the password form,
 * in every stage of the account (user enumeration, and a list of customer domains); so only
 * pages that depend on nothing but the address are left to it.
 */
public enum AddressStep {

    /** To the identity provider of the live account owning the domain. */
    BROKER,
    /** Keycloak's password form for this address, as it shows for an address in no organization. */
    PASSWORD_FORM,
    /** Keycloak's organization step unchanged: no address yet, or the user is already known to this login. */
    KEYCLOAK;

    /**
     * @param address   what was typed or hinted, or null
     * @param userKnown the login already identified its user (re-authentication)
     * @param broker    the identity provider the address's domain redirects to ({@link DomainRedirect}),
     *                  or null (none, or the redirect is off for this login)
     */
    public static AddressStep of(String address, boolean userKnown, String broker) {
        if (address == null || address.isBlank() || userKnown) {
            return KEYCLOAK;
        }
        return broker != null ? BROKER : PASSWORD_FORM;
    }

    /**
     * Whether the password form is shown for the found user or for nobody. Keycloak needs the
     * user set to check the password, but a disabled user (or a service account) set there is
     * refused on the spot, before any password ("Account is disabled"): those get the page of an
     * address nobody has, and whatever they type is "Invalid username or password", as for it.
     */
    public static boolean identifies(boolean found, boolean enabled, boolean serviceAccount) {
        return found && enabled && !serviceAccount;
    }
}
