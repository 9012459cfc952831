package com.apsis.sso.keycloak;

import java.util.List;

/**
 * Which identity provider an address typed on the login page goes to, free of Keycloak types.
 *
 * <p>The rule is Keycloak's own organization setting, read the same way: an identity provider
 * linked to the organization that owns the address's domain, enabled, with "redirect when the
 * email domain matches" ({@code kc.org.broker.redirect.mode.email-matches}) and a domain
 * ({@code kc.org.domain}) that is the address's domain or {@code ANY}. The provisioning tool
 * sets exactly that on a live account's provider and clears it in pilot and disabled, so the
 * stage decides (docs/contracts.md). Two matching providers are ambiguous: no redirect.
 */
public final class DomainRedirect {

    /** Keycloak's {@code OrganizationDomainModel.ANY_DOMAIN}: every domain of the organization. */
    public static final String ANY_DOMAIN = Contract.ANY_DOMAIN;

    /** What the decision needs to know about one identity provider of the organization. */
    public record Broker(String alias, boolean enabled, boolean redirectWhenEmailMatches, String domain) {
    }

    private DomainRedirect() {
    }

    /** The domain of an address (after the last '@'), lower-cased; null when there is none. */
    public static String domainOf(String address) {
        if (address == null) {
            return null;
        }
        String trimmed = address.trim();
        int at = trimmed.lastIndexOf('@');
        if (at <= 0 || at == trimmed.length() - 1) {
            return null;
        }
        return Ascii.lower(trimmed.substring(at + 1));
    }

    /**
     * The alias to redirect to, or null (show Keycloak's usual identity-first pages).
     *
     * @param domain  the typed address's domain (see {@link #domainOf})
     * @param brokers the identity providers of the enabled organization owning that domain
     */
    public static String brokerFor(String domain, List<Broker> brokers) {
        if (domain == null || brokers == null) {
            return null;
        }
        List<Broker> matching = brokers.stream()
                .filter(b -> b != null && b.alias() != null && b.enabled() && b.redirectWhenEmailMatches())
                .filter(b -> b.domain() != null
                        && (ANY_DOMAIN.equals(b.domain()) || Ascii.equalsIgnoreCase(b.domain().trim(), domain)))
                .toList();
        return matching.size() == 1 ? matching.get(0).alias() : null;
    }
}
