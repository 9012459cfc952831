package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.broker.provider.IdentityBrokerException;
import org.keycloak.models.IdentityProviderMapperModel;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.IdentityProviderSyncMode;
import org.keycloak.representations.JsonWebToken;

class EntraObjectIdMapperTest {

    static final String SUB = "pairwise-sub-for-app-1";
    static final String OID = "6f1c2e0a-8a4b-4c7e-9a0e-0b2f6d1e4c11";
    static final String TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad";

    final EntraObjectIdMapper mapper = new EntraObjectIdMapper();

    static BrokeredIdentityContext context(Map<String, Object> claims, String contextKey) {
        IdentityProviderModel idp = new IdentityProviderModel();
        idp.setAlias("entra-acme");
        idp.setEnabled(true);
        BrokeredIdentityContext context = new BrokeredIdentityContext(SUB, idp);
        context.setBrokerUserId("entra-acme." + SUB);
        JsonWebToken token = new JsonWebToken();
        token.subject(SUB);
        claims.forEach(token::setOtherClaims);
        context.getContextData().put(contextKey, token);
        return context;
    }

    static BrokeredIdentityContext context(Map<String, Object> claims) {
        return context(claims, OIDCIdentityProvider.VALIDATED_ID_TOKEN);
    }

    static IdentityProviderMapperModel model(String tenant) {
        IdentityProviderMapperModel model = new IdentityProviderMapperModel();
        model.setConfig(new HashMap<>());
        if (tenant != null) {
            model.getConfig().put(EntraObjectIdMapper.TENANT_ID, tenant);
        }
        return model;
    }

    @Test
    void replacesSubByOidAndKeepsSubAsLegacyId() {
        BrokeredIdentityContext context = context(Map.of("oid", OID, "tid", TENANT));
        mapper.preprocessFederatedIdentity(null, null, model(null), context);
        assertEquals(OID, context.getId());
        assertEquals("entra-acme." + OID, context.getBrokerUserId());
        assertEquals(SUB, context.getLegacyId(), "links made with the sub are found and migrated");
    }

    @Test
    void noLegacyIdWhenNothingChanged() {
        BrokeredIdentityContext context = context(Map.of("oid", OID));
        context.setId(OID);
        mapper.preprocessFederatedIdentity(null, null, model(null), context);
        assertNull(context.getLegacyId());
    }

    @Test
    void acceptsTheConfiguredTenantIgnoringCase() {
        BrokeredIdentityContext context = context(Map.of("oid", OID, "tid", TENANT));
        mapper.preprocessFederatedIdentity(null, null, model(TENANT.toUpperCase()), context);
        assertEquals(OID, context.getId());
    }

    @Test
    void blankTenantConfigMeansNoTenantCheck() {
        BrokeredIdentityContext context = context(Map.of("oid", OID));
        mapper.preprocessFederatedIdentity(null, null, model(" "), context);
        assertEquals(OID, context.getId());
    }

    @Test
    void failsWithoutOid() {
        BrokeredIdentityContext context = context(Map.of("tid", TENANT));
        IdentityBrokerException e = assertThrows(IdentityBrokerException.class,
                () -> mapper.preprocessFederatedIdentity(null, null, model(null), context));
        assertEquals("apsisSso.oid_missing", e.getMessageCode());
        assertEquals(SUB, context.getId(), "nothing changed");
    }

    @Test
    void failsWithoutAnyValidatedToken() {
        IdentityProviderModel idp = new IdentityProviderModel();
        idp.setAlias("entra-acme");
        idp.setEnabled(true);
        BrokeredIdentityContext context = new BrokeredIdentityContext(SUB, idp);
        assertThrows(IdentityBrokerException.class,
                () -> mapper.preprocessFederatedIdentity(null, null, model(null), context));
    }

    @Test
    void failsOnOtherTenantOrMissingTid() {
        BrokeredIdentityContext other = context(Map.of("oid", OID, "tid", "another-tenant"));
        IdentityBrokerException e = assertThrows(IdentityBrokerException.class,
                () -> mapper.preprocessFederatedIdentity(null, null, model(TENANT), other));
        assertEquals("apsisSso.tenant_mismatch", e.getMessageCode());
        BrokeredIdentityContext none = context(Map.of("oid", OID));
        assertThrows(IdentityBrokerException.class,
                () -> mapper.preprocessFederatedIdentity(null, null, model(TENANT), none));
    }

    @Test
    void readsTheAccessTokenWhenThereIsNoIdToken() {
        BrokeredIdentityContext context = context(Map.of("oid", OID), OIDCIdentityProvider.VALIDATED_ACCESS_TOKEN);
        mapper.preprocessFederatedIdentity(null, null, model(null), context);
        assertEquals(OID, context.getId());
    }

    @Test
    void supportsEverySyncMode() {
        for (IdentityProviderSyncMode mode : IdentityProviderSyncMode.values()) {
            assertTrue(mapper.supportsSyncMode(mode), mode.name());
        }
    }
}
