package com.apsis.sso.keycloak;

import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What the policy needs to know about the APSIS account (the Keycloak organization linked to
 * the identity provider), as plain values so it can be tested without Keycloak.
 *
 * @param stage         rollout stage; {@link Stage#DISABLED} also when the organization is disabled
 * @param pilotEmails   lower-cased emails allowed to use SSO in pilot stage
 * @param domains       the organization's email domains
 * @param provenDomains lower-cased domains the account's current tenant was proven to own
 *                      ({@link #provenDomains(Collection, String)})
 */
public record Account(Stage stage, Set<String> pilotEmails, List<Domain> domains, Set<String> provenDomains) {

    public static final String PILOT_ATTRIBUTE = Contract.PILOT_KEY;
    public static final String TENANT_ATTRIBUTE = Contract.TENANT_ID_KEY;
    /** One value per proven domain: {@code <domain> <tenant id> <time> <method>} (docs/contracts.md). */
    public static final String PROOFS_ATTRIBUTE = Contract.DOMAIN_PROOFS_KEY;
    /** The only proof method: Entra's discovery resolves the domain to the tenant. */
    static final String PROOF_METHOD = Contract.METHOD_DISCOVERY;

    /** An organization domain; only verified ones count. */
    public record Domain(String name, boolean verified) {
    }

    public Account {
        stage = stage == null ? Stage.PILOT : stage;
        pilotEmails = lowerCased(pilotEmails);
        domains = domains == null ? List.of() : List.copyOf(domains);
        provenDomains = lowerCased(provenDomains);
    }

    public static Account of(Stage stage, Collection<String> pilotEmails, List<Domain> domains) {
        return of(stage, pilotEmails, domains, Set.of());
    }

    public static Account of(Stage stage, Collection<String> pilotEmails, List<Domain> domains,
                             Collection<String> provenDomains) {
        return new Account(stage, pilotEmails == null ? null : Set.copyOf(pilotEmails), domains,
                provenDomains == null ? null : Set.copyOf(provenDomains));
    }

    /**
     * The domains the stored proofs prove for {@code tenantId}: a proof of another tenant (the
     * account's tenant changed since) or a malformed value proves nothing.
     */
    public static Set<String> provenDomains(Collection<String> proofValues, String tenantId) {
        if (proofValues == null || tenantId == null || tenantId.isBlank()) {
            return Set.of();
        }
        String tenant = normalize(tenantId);
        return proofValues.stream()
                .filter(v -> v != null && !v.isBlank())
                .map(v -> v.trim().split("\\s+"))
                .filter(p -> p.length == 4 && normalize(p[1]).equals(tenant) && PROOF_METHOD.equals(p[3]))
                .map(p -> normalize(p[0]))
                .collect(Collectors.toUnmodifiableSet());
    }

    /** True if the email's domain (after the last '@') is one of the verified domains. */
    public boolean allowsDomainOf(String email) {
        String domain = domainOf(email);
        return domain != null && domains.stream().anyMatch(d -> d.verified() && d.name() != null
                && normalize(d.name()).equals(domain));
    }

    /** True if the email's domain is a verified domain proven to belong to the account's tenant. */
    public boolean provesDomainOf(String email) {
        String domain = domainOf(email);
        return domain != null && allowsDomainOf(email) && provenDomains.contains(domain);
    }

    public boolean isPilot(String email) {
        return email != null && pilotEmails.contains(normalize(email));
    }

    private static String domainOf(String email) {
        int at = email == null ? -1 : email.lastIndexOf('@');
        if (at < 0 || at == email.length() - 1) {
            return null;
        }
        return normalize(email.substring(at + 1));
    }

    private static Set<String> lowerCased(Set<String> values) {
        return values == null ? Set.of() : values.stream()
                .filter(e -> e != null && !e.isBlank())
                .map(Account::normalize)
                .collect(Collectors.toUnmodifiableSet());
    }

    static String normalize(String value) {
        return Ascii.lower(value.trim());
    }
}
