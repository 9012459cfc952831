package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.text.MessageFormat;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.broker.oidc.OIDCIdentityProviderFactory;
import org.keycloak.broker.provider.IdentityProviderFactory;
import org.keycloak.broker.provider.IdentityProviderMapper;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.OrganizationDomainModel;
import org.keycloak.models.OrganizationModel;
import org.keycloak.services.managers.DefaultBruteForceProtector;

/** The parts Keycloak reads: service registration, factory metadata, messages, organization facts. */
class WiringTest {

    @Test
    void authenticatorFactoriesAreRegistered() {
        // The test classpath holds Keycloak's own registrations too; look at ours only.
        Set<String> ids = ours(AuthenticatorFactory.class).map(AuthenticatorFactory::getId).collect(Collectors.toSet());
        assertEquals(Set.of("apsis-safe-link", "apsis-sso-guard", "apsis-identity-first"), ids);
    }

    @Test
    void identityProviderFactoryReplacesKeycloaksOidcOne() throws Exception {
        // ServiceLoader cannot list this service on the test classpath (one of Keycloak's own
        // factories has no no-arg constructor), so read our registration file itself.
        String registered;
        try (InputStream in = getClass().getResourceAsStream(
                "/META-INF/services/" + IdentityProviderFactory.class.getName())) {
            assertNotNull(in);
            registered = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).trim();
        }
        assertEquals(EntraIdentityProviderFactory.class.getName(), registered);
        IdentityProviderFactory<?> factory = new EntraIdentityProviderFactory();
        // Same id as Keycloak's: Keycloak then picks the custom factory for every "oidc" provider.
        assertEquals(OIDCIdentityProviderFactory.PROVIDER_ID, factory.getId());
        assertTrue(factory instanceof OIDCIdentityProviderFactory, "everything but create() stays Keycloak's");
        assertEquals(new OIDCIdentityProviderFactory().order(), factory.order());
    }

    @Test
    void onlyProvidersWeManageGetTheEntraBehaviour() {
        IdentityProviderModel ours = new IdentityProviderModel();
        ours.setConfig(new java.util.HashMap<>(Map.of("apsis.managedBy", "apsis-sso")));
        IdentityProviderModel theirs = new IdentityProviderModel();
        theirs.setConfig(new java.util.HashMap<>(Map.of("clientId", "x")));
        assertTrue(EntraIdentityProviderFactory.isManaged(ours));
        assertFalse(EntraIdentityProviderFactory.isManaged(theirs));
        assertFalse(EntraIdentityProviderFactory.isManaged(new IdentityProviderModel()));
    }

    @Test
    void identityFirstStepSitsWhereKeycloaksOrganizationStepSits() {
        IdentityFirstAuthenticatorFactory factory = new IdentityFirstAuthenticatorFactory();
        assertEquals("apsis-identity-first", factory.getId());
        assertEquals(Requirement.ALTERNATIVE, factory.getRequirementChoices()[0]);
        assertEquals("apsis-sso", factory.getReferenceCategory(), "its failures never count as password failures");
        assertFalse(factory.isUserSetupAllowed());
    }

    @Test
    void mapperIsRegistered() {
        List<IdentityProviderMapper> mappers = ours(IdentityProviderMapper.class).toList();
        assertEquals(2, mappers.size());
        assertEquals("apsis-okta-issuer-mapper", mappers.get(1).getId());
        assertArrayEquals(new String[] {"oidc", "keycloak-oidc"}, mappers.get(1).getCompatibleProviders());
        IdentityProviderMapper mapper = mappers.get(0);
        assertEquals("apsis-entra-oid-mapper", mapper.getId());
        assertArrayEquals(new String[] {"oidc", "keycloak-oidc"}, mapper.getCompatibleProviders());
        assertEquals("Preprocessor", mapper.getDisplayCategory());
        assertEquals("Entra object id as user id", mapper.getDisplayType());
    }

    @Test
    void factoriesAreRequiredOrDisabledAndNeverSetUpUsers() {
        for (AuthenticatorFactory factory : List.of(new SafeLinkAuthenticatorFactory(), new SsoGuardAuthenticatorFactory())) {
            assertArrayEquals(new Requirement[] {Requirement.REQUIRED, Requirement.DISABLED}, factory.getRequirementChoices());
            assertFalse(factory.isUserSetupAllowed());
            assertFalse(factory.isConfigurable());
            assertEquals("apsis-sso", factory.getReferenceCategory());
        }
        assertEquals("APSIS: link to existing account member", new SafeLinkAuthenticatorFactory().getDisplayType());
        assertFalse(new SafeLinkAuthenticator().requiresUser());
        assertTrue(new SsoGuardAuthenticator().requiresUser());
        assertTrue(new SsoGuardAuthenticator().configuredFor(null, null, null),
                "a REQUIRED authenticator that requires a user must be configured for every user");
    }

    @Test
    void refusalsAreNotCountedByBruteForceProtection() {
        // failureChallenge reports a failure under the factory's reference category; Keycloak's
        // protector ignores categories outside this set.
        assertTrue(Collections.disjoint(DefaultBruteForceProtector.ALLOWED_AUTHENTICATION_CATEGORIES,
                Set.of(SafeLinkAuthenticatorFactory.CATEGORY)));
    }

    @Test
    void everyReasonAndMapperFailureHasAPlainSentence() throws Exception {
        Properties messages = new Properties();
        try (InputStream in = getClass().getResourceAsStream("/theme-resources/messages/messages_en.properties")) {
            assertNotNull(in, "messages bundle must be at theme-resources/messages in the jar");
            messages.load(in);
        }
        Stream<String> keys = Stream.concat(Stream.of(ProviderKind.values())
                        .flatMap(kind -> Stream.of(Reason.values()).map(reason -> reason.messageKey(kind))),
                Stream.of(EntraObjectIdMapper.OID_MISSING_MESSAGE, EntraObjectIdMapper.TENANT_MISMATCH_MESSAGE,
                        OktaIssuerMapper.ISSUER_MISMATCH_MESSAGE));
        keys.forEach(key -> {
            String text = messages.getProperty(key);
            assertNotNull(text, key);
            // Keycloak renders with MessageFormat; the sentence must survive it unchanged.
            assertEquals(text, new MessageFormat(text, Locale.ENGLISH).format(new Object[0]), key);
            assertTrue(text.endsWith("."), key);
        });
    }

    @Test
    void messagesWithParametersNameThemAll() throws Exception {
        Properties messages = new Properties();
        try (InputStream in = getClass().getResourceAsStream("/theme-resources/messages/messages_en.properties")) {
            messages.load(in);
        }
        Map<String, Integer> params = Map.of(Refusals.PASSWORD_INSTEAD_MESSAGE, 1,
                EntraIdentityProvider.CONSENT_GRANTED, 1, EntraIdentityProvider.CONSENT_DECLINED, 2,
                EntraIdentityProvider.CONSENT_CODE, 1);
        params.forEach((key, count) -> {
            String text = messages.getProperty(key);
            assertNotNull(text, key);
            Object[] values = java.util.stream.IntStream.range(0, count).mapToObj(i -> "<" + i + ">").toArray();
            String shown = new MessageFormat(text, Locale.ENGLISH).format(values);
            for (Object value : values) {
                assertTrue(shown.contains((String) value), key + " shows " + value);
            }
        });
    }

    @Test
    void everyConsentPageAndReasonHasItsWords() throws Exception {
        Properties messages = new Properties();
        try (InputStream in = getClass().getResourceAsStream("/theme-resources/messages/messages_en.properties")) {
            messages.load(in);
        }
        Stream.concat(Stream.concat(AdminConsent.REASONS.values().stream(), Stream.of(AdminConsent.UNKNOWN_REASON))
                        .map(reason -> EntraIdentityProvider.CONSENT_REASON_PREFIX + reason),
                Stream.of(EntraIdentityProvider.CONSENT_GRANTED_TITLE, EntraIdentityProvider.CONSENT_GRANTED_UNNAMED,
                        EntraIdentityProvider.CONSENT_DECLINED_TITLE, EntraIdentityProvider.CONSENT_NO_CODE))
                .forEach(key -> assertNotNull(messages.getProperty(key), key));
    }

    @Test
    void organizationBecomesAccount() {
        OrganizationModel org = organization(true, Map.of(
                "apsis.stage", List.of("live"),
                "apsis.pilot", List.of("Alice@acme.com")),
                Set.of(new OrganizationDomainModel("acme.com", true), new OrganizationDomainModel("old.com", false)));
        Account account = Accounts.accountOf(org);
        assertEquals(Stage.LIVE, account.stage());
        assertEquals(Set.of("alice@acme.com"), account.pilotEmails());
        assertTrue(account.allowsDomainOf("x@ACME.com"));
        assertFalse(account.allowsDomainOf("x@old.com"));
    }

    @Test
    void organizationProofsOfItsCurrentTenantBecomeProvenDomains() {
        String tenant = "aaaaaaaa-0000-4000-8000-000000000001";
        OrganizationModel org = organization(true, Map.of(
                "apsis.tenantId", List.of(tenant),
                "apsis.domainProofs", List.of(
                        "acme.com " + tenant + " 2030-05-01T12:00:00Z discovery",
                        "acme.se bbbbbbbb-0000-4000-8000-000000000002 2030-05-01T12:00:00Z discovery")),
                Set.of(new OrganizationDomainModel("acme.com", true), new OrganizationDomainModel("acme.se", true)));
        Account account = Accounts.accountOf(org);
        assertEquals(Set.of("acme.com"), account.provenDomains());
        assertTrue(account.provesDomainOf("x@acme.com"));
        assertFalse(account.provesDomainOf("x@acme.se"));
        assertEquals(Set.of(), Accounts.accountOf(organization(true, Map.of(
                "apsis.domainProofs", List.of("acme.com " + tenant + " 2030-05-01T12:00:00Z discovery")),
                Set.of(new OrganizationDomainModel("acme.com", true)))).provenDomains());
    }

    @Test
    void missingStageIsPilotAndDisabledOrganizationIsDisabled() {
        assertEquals(Stage.PILOT, Accounts.accountOf(organization(true, Map.of(), Set.of())).stage());
        assertEquals(Stage.DISABLED, Accounts.accountOf(
                organization(false, Map.of("apsis.stage", List.of("live")), Set.of())).stage());
    }

    static <T> Stream<T> ours(Class<T> service) {
        return ServiceLoader.load(service).stream()
                .filter(p -> p.type().getPackageName().equals(WiringTest.class.getPackageName()))
                .map(ServiceLoader.Provider::get);
    }

    static OrganizationModel organization(boolean enabled, Map<String, List<String>> attributes,
                                          Set<OrganizationDomainModel> domains) {
        return (OrganizationModel) Proxy.newProxyInstance(WiringTest.class.getClassLoader(),
                new Class<?>[] {OrganizationModel.class}, (proxy, method, args) -> switch (method.getName()) {
                    case "isEnabled" -> enabled;
                    case "getAttributes" -> attributes;
                    case "getDomains" -> domains.stream();
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }
}
