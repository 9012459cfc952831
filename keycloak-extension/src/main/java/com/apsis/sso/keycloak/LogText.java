package com.apsis.sso.keycloak;

/**
 * Text from a request or a token as it may go into Keycloak's log: control, format and
 * line/paragraph-separator characters are written as {@code \}{@code uXXXX} (a CR/LF in a
 * query parameter would otherwise start a forged log line, a bidi override would reorder one),
 * and at most {@value #MAX} characters are kept.
 */
final class LogText {

    static final int MAX = 200;

    private LogText() {
    }

    static String clean(String text) {
        if (text == null) {
            return null;
        }
        StringBuilder out = new StringBuilder();
        text.codePoints().limit(MAX).forEach(c -> {
            int type = Character.getType(c);
            if (type == Character.CONTROL || type == Character.FORMAT || type == Character.LINE_SEPARATOR
                    || type == Character.PARAGRAPH_SEPARATOR || type == Character.SURROGATE) {
                out.append(String.format("\\u%04x", c));
            } else {
                out.appendCodePoint(c);
            }
        });
        return text.codePointCount(0, text.length()) > MAX ? out + "..." : out.toString();
    }
}
