package com.apsis.sso.keycloak;

import java.util.List;

import org.keycloak.Config;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.services.managers.BruteForceProtector;
import org.keycloak.services.managers.BruteForceProtectorFactory;
import org.keycloak.services.managers.DefaultBruteForceProtector;
import org.keycloak.services.managers.DefaultBruteForceProtectorFactory;

/**
 * Registers {@link SsoCallbackBruteForceProtector} under the id of Keycloak's own protector
 * ({@value #PROVIDER_ID}), so it replaces it without any server option (a custom factory wins
 * over a built-in one with the same id: {@code ProviderManager#compareFactories}). Keycloak's
 * factory is kept inside and configured exactly as before (its {@code allowConcurrentRequests}
 * option included); Keycloak logs that a provider implements its internal bruteForceProtector SPI.
 */
public class SsoCallbackBruteForceProtectorFactory implements BruteForceProtectorFactory {

    public static final String PROVIDER_ID = "default-brute-force-detector";

    private final DefaultBruteForceProtectorFactory keycloaks = new DefaultBruteForceProtectorFactory();
    private SsoCallbackBruteForceProtector protector;

    @Override
    public BruteForceProtector create(KeycloakSession session) {
        return protector;
    }

    @Override
    public void init(Config.Scope config) {
        keycloaks.init(config);
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
        keycloaks.postInit(factory);
        protector = new SsoCallbackBruteForceProtector(keycloaks.create(null), new DefaultBruteForceProtector(factory));
    }

    @Override
    public List<ProviderConfigProperty> getConfigMetadata() {
        return keycloaks.getConfigMetadata();
    }

    @Override
    public void close() {
        keycloaks.close();
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }
}
