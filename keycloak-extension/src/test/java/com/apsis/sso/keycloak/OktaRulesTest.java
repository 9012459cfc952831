package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.broker.provider.IdentityBrokerException;
import org.keycloak.models.IdentityProviderMapperModel;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.representations.JsonWebToken;

/** The rules that differ per provider kind: the kind itself, email trust, the Okta issuer binding. */
class OktaRulesTest {

    static final String ISSUER = "https://acme.okta.com";
    static final String SUB = "00u1a2b3c4d5e6f7g8h9";
    static final String EMAIL = "alice@acme.com";

    static final Account ACME = Account.of(Stage.LIVE, List.of(), List.of(new Account.Domain("acme.com", true)),
            Set.of());

    static LinkDecision okta(Claim emailVerified, String email) {
        return LinkPolicy.link(ACME, ProviderKind.OKTA, email, emailVerified, SUB,
                e -> List.of(new Candidate("u-alice", EMAIL, true, true, null)));
    }

    @Test
    void theKindIsReadFromTheProvidersConfigAndAbsentIsEntra() {
        IdentityProviderModel idp = new IdentityProviderModel();
        idp.setConfig(new HashMap<>());
        assertEquals(ProviderKind.ENTRA, ProviderKind.of(idp));
        idp.getConfig().put(Contract.PROVIDER_KEY, "okta");
        assertEquals(ProviderKind.OKTA, ProviderKind.of(idp));
        assertEquals(ProviderKind.ENTRA, ProviderKind.of("google"), "an unknown kind keeps Entra's stricter rules");
        assertEquals("sub", ProviderKind.OKTA.userIdClaim());
        assertEquals("email_verified", ProviderKind.OKTA.emailVerifiedClaim());
        assertEquals("oid", ProviderKind.ENTRA.userIdClaim());
        assertEquals("apsisSso.okta.not_pilot", Reason.NOT_PILOT.messageKey(ProviderKind.OKTA));
        assertEquals("apsisSso.not_pilot", Reason.NOT_PILOT.messageKey());
    }

    @Test
    void oktaTrustsAnEmailOnlyWithEmailVerifiedTrue() {
        assertTrue(okta(Claim.of(true), EMAIL).allowed());
        assertEquals(Reason.EMAIL_UNVERIFIED, okta(Claim.of(false), EMAIL).reason());
        assertEquals(Reason.EMAIL_UNVERIFIED, okta(Claim.ABSENT, EMAIL).reason(), "absent is not verified");
        assertEquals(Reason.EMAIL_UNVERIFIED, okta(Claim.of(null), EMAIL).reason());
        assertEquals(Reason.EMAIL_UNVERIFIED, okta(Claim.of("true"), EMAIL).reason(), "a string is not JSON true");
    }

    @Test
    void oktaNeedsNoDomainProofButTheAccountsDomain() {
        // ACME has no proven domain: Entra without xms_edov would be refused as domain_unproven.
        assertTrue(okta(Claim.of(true), EMAIL).allowed());
        assertEquals(Reason.DOMAIN_UNPROVEN, LinkPolicy.link(ACME, EMAIL, Claim.ABSENT, SUB,
                e -> List.of(new Candidate("u-alice", EMAIL, true, true, null))).reason());
        assertEquals(Reason.DOMAIN_NOT_ALLOWED, okta(Claim.of(true), "alice@other.com").reason());
    }

    @Test
    void entraKeepsItsRules() {
        assertFalse(EmailTrust.unverified(ProviderKind.ENTRA, Claim.ABSENT));
        assertTrue(EmailTrust.unverified(ProviderKind.ENTRA, Claim.of(false)));
        assertTrue(EmailTrust.needsProvenDomain(ProviderKind.ENTRA, Claim.ABSENT));
        assertFalse(EmailTrust.needsProvenDomain(ProviderKind.ENTRA, Claim.of(true)));
        assertFalse(EmailTrust.needsProvenDomain(ProviderKind.OKTA, Claim.ABSENT));
    }

    @Test
    void theIssuerIsComparedExactly() {
        assertTrue(IssuerBinding.bound(ISSUER, ISSUER));
        assertFalse(IssuerBinding.bound(ISSUER, ISSUER + "/"));
        assertFalse(IssuerBinding.bound(ISSUER, "https://ACME.okta.com"));
        assertFalse(IssuerBinding.bound(ISSUER, ISSUER + "/oauth2/default"));
        assertFalse(IssuerBinding.bound(ISSUER, "https://evil.okta.com"));
        assertFalse(IssuerBinding.bound(ISSUER, null));
        assertFalse(IssuerBinding.bound(null, null), "no configured issuer binds nothing");
        assertFalse(IssuerBinding.bound("", ""));
    }

    static BrokeredIdentityContext context(String issuer) {
        IdentityProviderModel idp = new IdentityProviderModel();
        idp.setAlias("entra-acme");
        idp.setEnabled(true);
        BrokeredIdentityContext context = new BrokeredIdentityContext(SUB, idp);
        JsonWebToken token = new JsonWebToken();
        token.subject(SUB);
        token.issuer(issuer);
        context.getContextData().put(OIDCIdentityProvider.VALIDATED_ID_TOKEN, token);
        return context;
    }

    static IdentityProviderMapperModel model(String issuer) {
        IdentityProviderMapperModel model = new IdentityProviderMapperModel();
        model.setConfig(new HashMap<>(issuer == null ? Map.of() : Map.of(OktaIssuerMapper.ISSUER, issuer)));
        return model;
    }

    @Test
    void theMapperLetsTheAccountsIssuerThroughAndKeepsTheSub() {
        BrokeredIdentityContext context = context(ISSUER);
        new OktaIssuerMapper().preprocessFederatedIdentity(null, null, model(ISSUER), context);
        assertEquals(SUB, context.getId());
    }

    @Test
    void theMapperRefusesAnotherIssuerOrNone() {
        for (String other : new String[] {"https://evil.okta.com", ISSUER + "/oauth2/default", null}) {
            IdentityBrokerException refused = assertThrows(IdentityBrokerException.class,
                    () -> new OktaIssuerMapper().preprocessFederatedIdentity(null, null, model(ISSUER), context(other)));
            assertEquals("apsisSso.okta.tenant_mismatch", refused.getMessageCode());
        }
        assertThrows(IdentityBrokerException.class,
                () -> new OktaIssuerMapper().preprocessFederatedIdentity(null, null, model(null), context(ISSUER)),
                "a mapper without an issuer lets nothing through");
    }
}
