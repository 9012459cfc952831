package com.apsis.sso.keycloak;

import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What the policy needs to know about the APSIS account (the Keycloak organization linked to
 * the identity provider), as plain values so it can be tested without Keycloak.
 *
 * @param stage       rollout stage; {@link Stage#DISABLED} also when the organization is disabled
 * @param pilotEmails lower-cased emails allowed to use SSO in pilot stage
 * @param domains     the organization's email domains
 */
public record Account(Stage stage, Set<String> pilotEmails, List<Domain> domains) {

    public static final String PILOT_ATTRIBUTE = "apsis.pilot";

    /** An organization domain; only verified ones count. */
    public record Domain(String name, boolean verified) {
    }

    public Account {
        stage = stage == null ? Stage.PILOT : stage;
        pilotEmails = pilotEmails == null ? Set.of() : pilotEmails.stream()
                .filter(e -> e != null && !e.isBlank())
                .map(Account::normalize)
                .collect(Collectors.toUnmodifiableSet());
        domains = domains == null ? List.of() : List.copyOf(domains);
    }

    public static Account of(Stage stage, Collection<String> pilotEmails, List<Domain> domains) {
        return new Account(stage, pilotEmails == null ? null : Set.copyOf(pilotEmails), domains);
    }

    /** True if the email's domain (after the last '@') is one of the verified domains. */
    public boolean allowsDomainOf(String email) {
        int at = email.lastIndexOf('@');
        if (at < 0 || at == email.length() - 1) {
            return false;
        }
        String domain = normalize(email.substring(at + 1));
        return domains.stream().anyMatch(d -> d.verified() && d.name() != null
                && normalize(d.name()).equals(domain));
    }

    public boolean isPilot(String email) {
        return email != null && pilotEmails.contains(normalize(email));
    }

    static String normalize(String value) {
        return value.trim().toLowerCase(Locale.ROOT);
    }
}
