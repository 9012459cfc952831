package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.keycloak.models.KeycloakSession;
import org.keycloak.services.managers.BruteForceProtector;
import org.keycloak.services.managers.BruteForceProtectorFactory;
import org.keycloak.services.managers.DefaultBruteForceProtectorFactory;

class SsoCallbackBruteForceProtectorTest {

    /** Keycloak's blocking protector while another login of the user is in flight: always "locked". */
    private final List<String> keycloakCalls = new ArrayList<>();
    private final BruteForceProtector inFlight = protector(true, keycloakCalls);
    private final List<String> recordCalls = new ArrayList<>();
    private final BruteForceProtector noFailures = protector(false, recordCalls);
    private final SsoCallbackBruteForceProtector protector = new SsoCallbackBruteForceProtector(inFlight, noFailures);

    @Test
    void anSsoCallbackOfOursIsJudgedByTheFailureRecordOnly() {
        KeycloakSession session = session();
        SsoCallbackBruteForceProtector.markSsoCallback(session);
        assertFalse(protector.isTemporarilyDisabled(session, null, null));
        assertFalse(protector.isPermanentlyLockedOut(session, null, null));
        assertEquals(List.of("isTemporarilyDisabled", "isPermanentlyLockedOut"), recordCalls);
        assertEquals(List.of(), keycloakCalls);
    }

    @Test
    void everyOtherRequestKeepsKeycloaksProtector() {
        KeycloakSession session = session();
        assertTrue(protector.isTemporarilyDisabled(session, null, null));
        assertTrue(protector.isPermanentlyLockedOut(session, null, null));
        protector.failedLogin(null, null, null, null, null);
        protector.successfulLogin(null, null, null, null, null);
        protector.cleanUpPermanentLockout(session, null, null);
        assertEquals(List.of("isTemporarilyDisabled", "isPermanentlyLockedOut", "failedLogin", "successfulLogin",
                "cleanUpPermanentLockout"), keycloakCalls);
        assertEquals(List.of(), recordCalls);
    }

    @Test
    void itReplacesKeycloaksProtectorById() throws Exception {
        assertEquals(new DefaultBruteForceProtectorFactory().getId(), new SsoCallbackBruteForceProtectorFactory().getId());
        assertEquals(new DefaultBruteForceProtectorFactory().getConfigMetadata().size(),
                new SsoCallbackBruteForceProtectorFactory().getConfigMetadata().size(), "Keycloak's option stays valid");
        try (InputStream in = getClass().getResourceAsStream("/META-INF/services/" + BruteForceProtectorFactory.class.getName())) {
            assertNotNull(in);
            assertEquals(SsoCallbackBruteForceProtectorFactory.class.getName(),
                    new String(in.readAllBytes(), StandardCharsets.UTF_8).trim());
        }
    }

    private static BruteForceProtector protector(boolean locked, List<String> calls) {
        return (BruteForceProtector) Proxy.newProxyInstance(SsoCallbackBruteForceProtectorTest.class.getClassLoader(),
                new Class<?>[] {BruteForceProtector.class}, (proxy, method, args) -> {
                    calls.add(method.getName());
                    return method.getReturnType() == boolean.class ? locked : null;
                });
    }

    private static KeycloakSession session() {
        Map<String, Object> attributes = new HashMap<>();
        return (KeycloakSession) Proxy.newProxyInstance(SsoCallbackBruteForceProtectorTest.class.getClassLoader(),
                new Class<?>[] {KeycloakSession.class}, (proxy, method, args) -> switch (method.getName()) {
                    case "setAttribute" -> attributes.put((String) args[0], args[1]);
                    case "getAttribute" -> attributes.get((String) args[0]);
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }
}
