package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AddressStepTest {

    @Test
    void aLiveDomainGoesToItsProviderWhoeverTypesIt() {
        assertEquals(AddressStep.BROKER, AddressStep.of("ann@acme.example", false, "entra-acme"));
    }

    @Test
    void everyOtherAddressGetsThePasswordFormWhateverExists() {
        // No broker: an unknown or known address in a pilot, awaiting-setup or disabled account's
        // domain, a contractor, or a live one whose redirect is off for this login; nothing else is asked.
        assertEquals(AddressStep.PASSWORD_FORM, AddressStep.of("nobody@pilot.example", false, null));
        assertEquals(AddressStep.PASSWORD_FORM, AddressStep.of("bob", false, null));
    }

    @Test
    void keycloakKeepsTheFirstPageAndKnownUsers() {
        assertEquals(AddressStep.KEYCLOAK, AddressStep.of(null, false, null));
        assertEquals(AddressStep.KEYCLOAK, AddressStep.of("  ", false, "entra-acme"));
        assertEquals(AddressStep.KEYCLOAK, AddressStep.of("ann@acme.example", true, "entra-acme"));
    }

    @Test
    void onlyAUserWhoMaySignInIsSetBeforeThePasswordForm() {
        assertTrue(AddressStep.identifies(true, true, false));
        assertFalse(AddressStep.identifies(false, false, false));
        assertFalse(AddressStep.identifies(true, false, false), "a disabled user gets the unknown address's page");
        assertFalse(AddressStep.identifies(true, true, true), "a service account is nobody to sign in as");
    }
}
