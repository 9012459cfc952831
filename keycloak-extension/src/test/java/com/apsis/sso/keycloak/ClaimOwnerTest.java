package com.apsis.sso.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Map;

import org.junit.jupiter.api.Test;

class ClaimOwnerTest {

    final ClaimOwner tabA = new ClaimOwner("root-1", "tab-a", "client");
    final ClaimOwner tabB = new ClaimOwner("root-2", "tab-b", "client");

    @Test
    void anotherLoginInFlightIsWaitedFor() {
        assertEquals(ClaimOwner.Wait.WAIT, ClaimOwner.decide(tabA, tabB, true));
    }

    @Test
    void aClaimWhoseLoginNoLongerExistsIsTakenOverAtOnce() {
        assertEquals(ClaimOwner.Wait.TAKE_OVER, ClaimOwner.decide(tabA, tabB, false));
        assertEquals(ClaimOwner.Wait.TAKE_OVER, ClaimOwner.decide(tabA, null, false));
    }

    @Test
    void aLoginNeverWaitsForItself() {
        assertEquals(ClaimOwner.Wait.OWN, ClaimOwner.decide(tabA, new ClaimOwner("root-1", "tab-a", "client"), true));
    }

    @Test
    void aClaimWithoutItsOwnerYetIsAFreshOne() {
        // The owner is written when the claiming request commits: until then it is in flight.
        assertEquals(ClaimOwner.Wait.WAIT, ClaimOwner.decide(null, tabB, false));
    }

    @Test
    void theOwnerTravelsAsNotes() {
        assertEquals(tabA, ClaimOwner.of(tabA.notes()));
        assertNull(ClaimOwner.of(Map.of()));
        assertNull(ClaimOwner.of(null));
        assertNull(ClaimOwner.of(Map.of(ClaimOwner.ROOT, "r", ClaimOwner.TAB, "t")));
    }
}
