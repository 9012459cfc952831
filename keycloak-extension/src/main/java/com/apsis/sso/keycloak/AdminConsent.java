package com.apsis.sso.keycloak;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
 * <p>Anybody can send such an answer: nothing in it is signed. So the page shown depends on the
 * query alone, never on the account's configuration, and of Entra's refusal only the code is
 * used ({@link #code()}, {@link #reason()}), in our words; the free-text
 * {@code error_description} is never shown.
 *
 * @param granted          Entra reports consent granted
 * @param tenant           the tenant Entra names, or null
 * @param error            Entra's error code, or null
 * @param errorDescription Entra's explanation, or null (logged, cleaned, never shown)
 */
public record AdminConsent(boolean granted, String tenant, String error, String errorDescription) {

    /** The {@code state} of the admin-consent links the provisioning tool prints. */
    public static final String STATE = Contract.ADMIN_CONSENT_STATE;

    /** A reason for the codes Entra's admin consent is known to answer with; any other is {@code unknown}. */
    static final Map<String, String> REASONS = Map.ofEntries(
            Map.entry("AADSTS65004", "declined"),
            Map.entry("access_denied", "declined"),
            Map.entry("permission_denied", "cancelled"),
            Map.entry("AADSTS65001", "not_consented"),
            Map.entry("consent_required", "not_consented"),
            Map.entry("AADSTS90093", "not_admin"),
            Map.entry("AADSTS90094", "not_admin"),
            Map.entry("AADSTS50020", "account_of_other_tenant"),
            Map.entry("AADSTS700016", "app_not_found"),
            Map.entry("unauthorized_client", "app_not_found"),
            Map.entry("AADSTS50011", "redirect_uri"),
            Map.entry("AADSTS500113", "redirect_uri"),
            Map.entry("AADSTS53003", "conditional_access"),
            Map.entry("AADSTS50105", "not_assigned"),
            Map.entry("server_error", "entra_unavailable"),
            Map.entry("temporarily_unavailable", "entra_unavailable"));

    static final String UNKNOWN_REASON = "unknown";

    private static final Pattern AADSTS = Pattern.compile("\\bAADSTS[0-9]{4,9}\\b");
    private static final Pattern OAUTH_ERROR = Pattern.compile("[a-z_]{1,64}");
    private static final Pattern TENANT_ID = Pattern.compile(
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

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

    /** Consent was granted, but in another directory than the account is set up for (a log line, never a page). */
    public boolean grantedInOtherTenant(String expectedTenant) {
        return granted && tenant != null && expectedTenant != null && !tenant.equalsIgnoreCase(expectedTenant.trim());
    }

    /** The tenant Entra names, when it is a tenant id (a GUID) that a page may repeat; else null. */
    public String shownTenant() {
        return tenant != null && TENANT_ID.matcher(tenant).matches() ? tenant.toLowerCase(java.util.Locale.ROOT) : null;
    }

    /**
     * Entra's code for a refusal: the {@code AADSTSnnnnn} in its description, else the OAuth
     * {@code error} when it looks like one; null when there is none (the text around it is not used).
     */
    public String code() {
        if (errorDescription != null) {
            Matcher m = AADSTS.matcher(errorDescription);
            if (m.find()) {
                return m.group();
            }
        }
        return error != null && OAUTH_ERROR.matcher(error).matches() ? error : null;
    }

    /**
     * Our reason for the refusal (a key of {@link #REASONS}' values, or {@value #UNKNOWN_REASON}):
     * the {@code AADSTS} code's when we know it, else the OAuth error's.
     */
    public String reason() {
        String code = code();
        if (code != null && REASONS.containsKey(code)) {
            return REASONS.get(code);
        }
        if (error != null && REASONS.containsKey(error)) {
            return REASONS.get(error);
        }
        return UNKNOWN_REASON;
    }

    private static String blankToNull(String value) {
        return value == null || value.isBlank() ? null : value.trim();
    }
}
