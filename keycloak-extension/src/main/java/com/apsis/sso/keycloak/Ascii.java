package com.apsis.sso.keycloak;

/**
 * Case folding for addresses and domains: ASCII letters only. {@code toLowerCase} and
 * {@code equalsIgnoreCase} also fold U+212A KELVIN SIGN into {@code k} (and a few other
 * compatibility characters into ASCII), so a claim for {@code x@\u212Aelvin.example} would
 * compare equal to {@code x@kelvin.example}. The Python side stores domains as A-labels and
 * refuses such characters (apsis_core/validation.py); here they simply never match.
 */
final class Ascii {

    private Ascii() {
    }

    /** {@code value} with A–Z lowered and every other character unchanged. */
    static String lower(String value) {
        StringBuilder out = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            out.append(c >= 'A' && c <= 'Z' ? (char) (c + ('a' - 'A')) : c);
        }
        return out.toString();
    }

    /** Equal after {@link #lower}; null equals nothing. */
    static boolean equalsIgnoreCase(String a, String b) {
        return a != null && b != null && lower(a).equals(lower(b));
    }
}
