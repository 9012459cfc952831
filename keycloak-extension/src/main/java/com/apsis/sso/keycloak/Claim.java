package com.apsis.sso.keycloak;

/**
 * A token claim as it was sent: absent, or present with a value that may be JSON null. The
 * difference matters for {@code xms_edov}: the rule is "if the token carries it, it must be
 * true", so a claim sent as null is present and not true.
 *
 * @param present whether the token has the claim at all
 * @param value   its value (a Boolean, String, Number, List, Map or null)
 */
public record Claim(boolean present, Object value) {

    public static final Claim ABSENT = new Claim(false, null);

    public static Claim of(Object value) {
        return new Claim(true, value);
    }
}
