package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class LogTextTest {

    @Test
    void noRequestTextStartsALogLineOfItsOwn() {
        assertEquals("x\\u000d\\u000a2026-01-01 INFO forged", LogText.clean("x\r\n2026-01-01 INFO forged"));
        assertEquals("a\\u0085b\\u2028c\\u2029d\\u001be", LogText.clean("a\u0085b\u2028c\u2029d\u001be"));
        assertEquals("admin\\u202e", LogText.clean("admin\u202e"), "a bidi override cannot reorder the line");
        assertEquals("ordinary text: AADSTS65004 (é, 日本)", LogText.clean("ordinary text: AADSTS65004 (é, 日本)"));
        assertNull(LogText.clean(null));
    }

    @Test
    void longTextIsCut() {
        assertEquals(LogText.MAX + 3, LogText.clean("y".repeat(5000)).length());
    }
}
