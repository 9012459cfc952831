package com.apsis.sso.keycloak;

import java.util.Map;

/**
 * Entra's answer to an admin-consent request, recognised at the account's broker endpoint (the
 * one redirect URI the customer registers), free of Keycloak types.
 *
 * <p>Microsoft documents the answer to {@code /{tenant}/adminconsent} as a redirect to the
 * request's {@code redirect_uri} with {@code admin_consent=True&tenant=...} or
 * {@code error=...&error_description=...}, plus {@code state} when the request carried one.
 * Keycloak's broker endpoint expects a login response ({@code code} or {@code error}, always
 * with Keycloak's own {@code state}) and shows "Missing state parameter" for anything else. The
 * admin-consent link we print carries {@link #STATE}; links printed before it existed carry no
 * state, so an answer without state is read as an admin-consent answer too. A login response
 * (a code, or a state of Keycloak's) is never one.
 *
 * @param granted          Entra reports consent granted
 * @param tenant           the tenant Entra names, or null
 * @param error            Entra's error code, or null
 * @param errorDescription Entra's explanation, or null
 */
public record AdminConsent(boolean granted, String tenant, String error, String errorDescription) {

    /** The {@code state} of the admin-consent links the provisioning tool prints. */
    public static final String STATE = "apsis-admin-consent";

    static final int MAX_SHOWN = 300;

    /** The answer in these query parameters (first values), or null when they are no admin-consent answer. */
    public static AdminConsent read(Map<String, String> query) {
        String state = blankToNull(query.get("state"));
        if (blankToNull(query.get("code")) != null || (state != null && !STATE.equals(state))) {
            return null;
        }
        String adminConsent = blankToNull(query.get("admin_consent"));
        String error = blankToNull(query.get("error"));
        if (adminConsent == null && error == null && state == null) {
            return null; // nothing from Entra at all: Keycloak's own page is as good as any
        }
        boolean granted = error == null && "true".equalsIgnoreCase(adminConsent);
        return new AdminConsent(granted, blankToNull(query.get("tenant")), error,
                blankToNull(query.get("error_description")));
    }

    /** Consent was granted, but in another directory than the account is set up for. */
    public boolean grantedInOtherTenant(String expectedTenant) {
        return granted && tenant != null && expectedTenant != null && !tenant.equalsIgnoreCase(expectedTenant.trim());
    }

    /**
     * Text from the query string as a page may show it. Keycloak's error page renders its
     * message as sanitised HTML after decoding every entity, so escaping would be undone and a
     * link put into a crafted URL would survive: markup characters are dropped instead. Only
     * the first line is kept (Entra appends trace and correlation ids on the next ones).
     */
    public static String shown(String text) {
        String line = text.strip().split("[\\r\\n]", 2)[0].replaceAll("[<>\"'&\\p{Cntrl}]", "");
        return line.length() > MAX_SHOWN ? line.substring(0, MAX_SHOWN) + "..." : line;
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value.trim();
    }
}
