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
    void entrasTextIsShownAsTextOnly() {
        assertEquals("AADSTS65004: User declined to consent.",
                AdminConsent.shown("AADSTS65004: User declined to consent.\r\nTrace ID: 1\r\nCorrelation ID: 2"));
        assertEquals("a href=https://evil.example/click/a", AdminConsent.shown("<a href=\"https://evil.example/\">click</a>"));
        assertEquals("lt;scriptgt;", AdminConsent.shown("&lt;script&gt;"));
        assertEquals(AdminConsent.MAX_SHOWN + 3, AdminConsent.shown("x".repeat(1000)).length());
    }
}
