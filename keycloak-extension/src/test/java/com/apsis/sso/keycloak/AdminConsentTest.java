package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

class AdminConsentTest {

    static final String TENANT = "2f4a1d7c-0000-4000-8000-000000000001";

    @Test
    void grantedWithOurState() {
        AdminConsent consent = AdminConsent.read(Map.of("admin_consent", "True", "tenant", TENANT,
                "state", AdminConsent.STATE));
        assertTrue(consent.granted());
        assertEquals(TENANT, consent.tenant());
        assertFalse(consent.grantedInOtherTenant(TENANT.toUpperCase()));
        assertTrue(consent.grantedInOtherTenant("11111111-1111-4111-8111-111111111111"));
    }

    @Test
    void grantedWithoutStateFromLinksPrintedBeforeTheStateExisted() {
        assertTrue(AdminConsent.read(Map.of("admin_consent", "True", "tenant", TENANT)).granted());
    }

    @Test
    void refusedWithEntrasReason() {
        AdminConsent consent = AdminConsent.read(Map.of("error", "permission_denied",
                "error_description", "The admin canceled the request", "state", AdminConsent.STATE));
        assertFalse(consent.granted());
        assertEquals("permission_denied", consent.error());
        assertEquals("The admin canceled the request", consent.errorDescription());
        assertFalse(consent.grantedInOtherTenant("other"), "a refusal is never 'granted elsewhere'");
        assertFalse(AdminConsent.read(Map.of("error", "access_denied")).granted());
        assertFalse(AdminConsent.read(Map.of("admin_consent", "False", "tenant", TENANT)).granted());
        assertFalse(AdminConsent.read(Map.of("admin_consent", "True", "error", "x")).granted());
    }

    @Test
    void loginResponsesAreLeftToKeycloak() {
        assertNull(AdminConsent.read(Map.of("code", "abc", "state", "keycloak-state")));
        assertNull(AdminConsent.read(Map.of("error", "access_denied", "state", "xyz.tab.client")),
                "a cancelled login carries Keycloak's state");
        assertNull(AdminConsent.read(Map.of("admin_consent", "True", "code", "abc")));
        assertNull(AdminConsent.read(Map.of()), "nothing at all: Keycloak's own page");
    }

    @Test
    void ourStateAloneIsAnAnswerWithoutConsent() {
        AdminConsent consent = AdminConsent.read(Map.of("state", AdminConsent.STATE));
        assertFalse(consent.granted());
        assertNull(consent.error());
    }

    @Test
    void onlyATenantIdIsRepeated() {
        assertEquals(TENANT, AdminConsent.read(Map.of("admin_consent", "True", "tenant", TENANT.toUpperCase())).shownTenant());
        assertNull(AdminConsent.read(Map.of("admin_consent", "True", "tenant", "contoso.example")).shownTenant());
        assertNull(AdminConsent.read(Map.of("admin_consent", "True", "tenant", TENANT + "\r\nforged")).shownTenant());
        assertNull(AdminConsent.read(Map.of("admin_consent", "True")).shownTenant());
    }

    @Test
    void aRefusalIsEntrasCodeInOurWordsNeverItsText() {
        AdminConsent declined = AdminConsent.read(Map.of("error", "access_denied", "error_description",
                "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: 1", "state", AdminConsent.STATE));
        assertEquals("AADSTS65004", declined.code());
        assertEquals("declined", declined.reason());

        // Microsoft's documented cancel of the tenant-wide admin consent carries no AADSTS code.
        AdminConsent cancelled = AdminConsent.read(Map.of("error", "permission_denied",
                "error_description", "The admin canceled the request"));
        assertEquals("permission_denied", cancelled.code());
        assertEquals("cancelled", cancelled.reason());

        AdminConsent notAdmin = AdminConsent.read(Map.of("error", "consent_required",
                "error_description", "AADSTS90094: The grant requires admin permission."));
        assertEquals("AADSTS90094", notAdmin.code());
        assertEquals("not_admin", notAdmin.reason(), "the AADSTS code is more precise than the OAuth error");

        AdminConsent unknownCode = AdminConsent.read(Map.of("error", "access_denied", "error_description", "AADSTS99999: x"));
        assertEquals("AADSTS99999", unknownCode.code());
        assertEquals("declined", unknownCode.reason(), "an unknown AADSTS code falls back to the OAuth error");

        AdminConsent forged = AdminConsent.read(Map.of("error", "Your account is suspended, call +1 555",
                "error_description", "<a href='https://evil.example'>click</a>", "state", AdminConsent.STATE));
        assertNull(forged.code(), "free text is no code");
        assertEquals(AdminConsent.UNKNOWN_REASON, forged.reason());
    }
}
