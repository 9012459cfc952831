package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.keycloak.services.resource.RealmResourceProviderFactory;

/** The bulk links resource's pure parts: paging and oid limits, the row. */
class LinksQueryTest {

    @Test
    void defaultsToTheFirstPageOfAHundred() {
        LinksQuery q = LinksQuery.of(null, null, null, null);
        assertEquals(new LinksQuery(0, 100, null, List.of()), q);
        assertFalse(q.byOid());
    }

    @Test
    void pagesAreBoundedAndNeverNegative() {
        assertEquals(1000, LinksQuery.of(2000, 1000, null, List.of()).max());
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(-1, 10, null, null));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(0, 0, null, null));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(0, 1001, null, null));
    }

    @Test
    void aPageFollowsTheLastUserIdOfThePreviousOneNeverAnOffsetToo() {
        assertEquals("u-9", LinksQuery.of(null, 1000, "u-9", null).after());
        assertEquals("u-9", LinksQuery.of(0, 1000, "u-9", null).after());
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(5, 10, "u-9", null));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(null, 10, " ", null));
    }

    @Test
    void oidsAreDeduplicatedNonEmptyAndAtMostAHundred() {
        LinksQuery q = LinksQuery.of(null, null, null, Arrays.asList("a", "b", "a"));
        assertTrue(q.byOid());
        assertEquals(List.of("a", "b"), q.oids());
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(null, null, null, Arrays.asList("a", " ")));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(null, null, null, Arrays.asList("a", null)));
        List<String> many = new ArrayList<>();
        for (int i = 0; i < 101; i++) {
            many.add("oid-" + i);
        }
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.of(null, null, null, many));
        assertEquals(100, LinksQuery.of(null, null, null, many.subList(0, 100)).oids().size());
    }

    @Test
    void emailsAreLowercasedDeduplicatedNonEmptyAndAtMostAHundred() {
        assertEquals(List.of("ann@acme.example", "bo@acme.example"),
                LinksQuery.emails(Arrays.asList("Ann@ACME.example", "bo@acme.example", "ann@acme.example")));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.emails(null));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.emails(List.of()));
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.emails(Arrays.asList("a@x", " ")));
        List<String> many = new ArrayList<>();
        for (int i = 0; i < 101; i++) {
            many.add("u" + i + "@x");
        }
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.emails(many));
        assertEquals(100, LinksQuery.emails(many.subList(0, 100)).size());
    }

    @Test
    void aRowHoldsExactlyWhatTheDaemonNeeds() {
        Map<String, Object> row = LinksQuery.row("u", "o", "e@x", true, "n", List.of(LinksQuery.organization("g", "acme")));
        assertEquals(List.of("userId", "oid", "email", "enabled", "username", "organizations"), List.copyOf(row.keySet()));
        assertEquals(List.of(Map.of("id", "g", "alias", "acme")), row.get("organizations"));
    }

    @Test
    void pagingParametersAreWholeNumbersOrRefused() {
        assertEquals(new LinksQuery(20, 5, null, List.of()), LinksQuery.parse("20", "+5", null, null));
        assertEquals(new LinksQuery(0, 100, null, List.of()), LinksQuery.parse(null, null, null, null));
        assertEquals("max must be a whole number",
                assertThrows(IllegalArgumentException.class, () -> LinksQuery.parse(null, "abc", null, null)).getMessage());
        assertEquals("first is out of range",
                assertThrows(IllegalArgumentException.class, () -> LinksQuery.parse("2147483648", null, null, null)).getMessage());
        for (String bad : List.of("", " 1", "1.5", "1e3", "0x10", "-", "99999999999999999999")) {
            assertThrows(IllegalArgumentException.class, () -> LinksQuery.parse(bad, null, null, null), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> LinksQuery.parse("-1", null, null, null), "still never negative");
    }

    @Test
    void theResourceIsRegistered() throws Exception {
        try (InputStream in = getClass().getResourceAsStream(
                "/META-INF/services/" + RealmResourceProviderFactory.class.getName())) {
            assertTrue(new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
                    .anyMatch(ApsisSsoResourceProviderFactory.class.getName()::equals));
        }
        assertEquals("apsis-sso", new ApsisSsoResourceProviderFactory().getId());
    }
}
