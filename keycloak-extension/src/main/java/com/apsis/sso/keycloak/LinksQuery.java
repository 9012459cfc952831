package com.apsis.sso.keycloak;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One request to the bulk links resource, validated: a page of every link to an identity
 * provider, ordered by Keycloak user id ({@code after}: the last user id of the previous page, so
 * a page costs the same wherever it is in a 100,000-user listing; or {@code first}, an offset),
 * {@code max} rows long; or the links of up to {@value #MAX_OIDS} given Entra object ids.
 * Pure, so the rules are unit-tested without a server; {@link LinksResource} only gathers.
 */
public record LinksQuery(int first, int max, String after, List<String> oids) {

    public static final int DEFAULT_MAX = 100;
    public static final int MAX_PAGE = 1000;
    public static final int MAX_OIDS = 100;

    /**
     * The query string's parameters as sent: {@code first} and {@code max} must be whole numbers
     * (HTTP 400 otherwise, not JAX-RS's 404 for a parameter it cannot convert).
     */
    public static LinksQuery parse(String first, String max, String after, List<String> oids) {
        return of(number("first", first), number("max", max), after, oids);
    }

    /** A whole number in a query parameter, or null when absent. */
    static Integer number(String name, String text) {
        if (text == null) {
            return null;
        }
        if (!text.matches("[+-]?[0-9]+")) {
            throw new IllegalArgumentException(name + " must be a whole number");
        }
        try {
            return Integer.parseInt(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " is out of range");
        }
    }

    /** Null parameters take their defaults; anything else out of range is refused (HTTP 400). */
    public static LinksQuery of(Integer first, Integer max, String after, List<String> oids) {
        int f = first == null ? 0 : first;
        if (after != null && after.isBlank()) {
            throw new IllegalArgumentException("after must not be empty");
        }
        if (after != null && f != 0) {
            throw new IllegalArgumentException("first and after cannot be combined");
        }
        int m = max == null ? DEFAULT_MAX : max;
        if (f < 0) {
            throw new IllegalArgumentException("first must be 0 or more");
        }
        if (m < 1 || m > MAX_PAGE) {
            throw new IllegalArgumentException("max must be between 1 and " + MAX_PAGE);
        }
        List<String> wanted = new ArrayList<>();
        for (String oid : oids == null ? List.<String>of() : oids) {
            if (oid == null || oid.isBlank()) {
                throw new IllegalArgumentException("an oid must not be empty");
            }
            if (!wanted.contains(oid)) {
                wanted.add(oid);
            }
        }
        if (wanted.size() > MAX_OIDS) {
            throw new IllegalArgumentException("at most " + MAX_OIDS + " oids per request");
        }
        return new LinksQuery(f, m, after, List.copyOf(wanted));
    }

    /**
     * The addresses of a by-email lookup, validated: 1 to {@value #MAX_OIDS}, none empty,
     * lowercased (as Keycloak stores them) and deduplicated.
     */
    public static List<String> emails(List<String> emails) {
        List<String> wanted = new ArrayList<>();
        for (String email : emails == null ? List.<String>of() : emails) {
            if (email == null || email.isBlank()) {
                throw new IllegalArgumentException("an email must not be empty");
            }
            String lower = Ascii.lower(email.trim());
            if (!wanted.contains(lower)) {
                wanted.add(lower);
            }
        }
        if (wanted.isEmpty() || wanted.size() > MAX_OIDS) {
            throw new IllegalArgumentException("between 1 and " + MAX_OIDS + " emails per request");
        }
        return List.copyOf(wanted);
    }

    /** By object ids (one lookup each), rather than a page of the whole listing. */
    public boolean byOid() {
        return !oids.isEmpty();
    }

    /**
     * What the daemon needs of one link, and nothing more: no attributes, no credentials; with the
     * organizations (accounts) the user is a member of, which decide whether the daemon may act.
     */
    public static Map<String, Object> row(String userId, String oid, String email, boolean enabled, String username,
                                          List<Map<String, Object>> organizations) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("userId", userId);
        row.put("oid", oid);
        row.put("email", email);
        row.put("enabled", enabled);
        row.put("username", username);
        row.put("organizations", List.copyOf(organizations));
        return row;
    }

    /** One organization of a row, named as the Admin API names it. */
    public static Map<String, Object> organization(String id, String alias) {
        Map<String, Object> org = new LinkedHashMap<>();
        org.put("id", id);
        org.put("alias", alias);
        return org;
    }
}
