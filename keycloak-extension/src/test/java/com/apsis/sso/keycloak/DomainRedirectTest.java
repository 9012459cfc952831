package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;

import org.junit.jupiter.api.Test;

import com.apsis.sso.keycloak.DomainRedirect.Broker;

class DomainRedirectTest {

    static final Broker LIVE = new Broker("entra-acme", true, true, "ANY");

    @Test
    void domainIsAfterTheLastAtSignLowerCased() {
        assertEquals("acme.com", DomainRedirect.domainOf(" Alice@ACME.com "));
        assertEquals("acme.com", DomainRedirect.domainOf("\"a@b\"@acme.com"));
        assertNull(DomainRedirect.domainOf("alice"));
        assertNull(DomainRedirect.domainOf("alice@"));
        assertNull(DomainRedirect.domainOf("@acme.com"));
        assertNull(DomainRedirect.domainOf(null));
    }

    @Test
    void liveProviderForAnyDomainOfItsOrganization() {
        assertEquals("entra-acme", DomainRedirect.brokerFor("acme.com", List.of(LIVE)));
    }

    @Test
    void providerForOneDomainOnlyRedirectsThatDomain() {
        Broker one = new Broker("entra-acme", true, true, "acme.se");
        assertEquals("entra-acme", DomainRedirect.brokerFor("acme.se", List.of(one)));
        assertNull(DomainRedirect.brokerFor("acme.com", List.of(one)));
    }

    @Test
    void pilotDisabledOrUnsetProvidersDoNotRedirect() {
        assertNull(DomainRedirect.brokerFor("acme.com", List.of(new Broker("entra-acme", true, false, "ANY"))), "pilot");
        assertNull(DomainRedirect.brokerFor("acme.com", List.of(new Broker("entra-acme", false, true, "ANY"))), "disabled");
        assertNull(DomainRedirect.brokerFor("acme.com", List.of(new Broker("entra-acme", true, true, null))), "no domain");
        assertNull(DomainRedirect.brokerFor("acme.com", List.of()), "no provider");
        assertNull(DomainRedirect.brokerFor(null, List.of(LIVE)), "no domain typed");
    }

    @Test
    void twoMatchingProvidersAreAmbiguous() {
        assertNull(DomainRedirect.brokerFor("acme.com", List.of(LIVE, new Broker("entra-acme-2", true, true, "acme.com"))));
        assertEquals("entra-acme", DomainRedirect.brokerFor("acme.com",
                List.of(LIVE, new Broker("entra-acme-2", true, false, "acme.com"))));
    }
}
