package com.apsis.sso.keycloak;

import java.util.Map;

/**
 * The login that holds a person's first-login claim ({@link FirstLogins}): the browser tab of
 * an authentication session (root session id, tab id, client), kept next to the claim so that
 * another login can tell whether the holder is still in flight. Pure; the lookups are in
 * {@link FirstLogins}.
 */
record ClaimOwner(String rootSessionId, String tabId, String clientId) {

    static final String ROOT = "root";
    static final String TAB = "tab";
    static final String CLIENT = "client";

    Map<String, String> notes() {
        return Map.of(ROOT, rootSessionId, TAB, tabId, CLIENT, clientId);
    }

    /** The owner these notes name, or null when there are none (yet) or they are incomplete. */
    static ClaimOwner of(Map<String, String> notes) {
        if (notes == null || notes.get(ROOT) == null || notes.get(TAB) == null || notes.get(CLIENT) == null) {
            return null;
        }
        return new ClaimOwner(notes.get(ROOT), notes.get(TAB), notes.get(CLIENT));
    }

    /** What a login that finds the claim taken does. */
    enum Wait {
        /** The claim is this login's own (Entra's answer came back twice to the same tab). */
        OWN,
        /** The holder is in flight: wait for its link (or for it to end). */
        WAIT,
        /** The holder's login no longer exists: the claim is stale, take it over. */
        TAKE_OVER
    }

    /**
     * @param owner             the holder named next to the claim, or null: it claimed a moment ago
     *                          and its request has not committed yet, so it is in flight
     * @param me                this login, or null when it has no authentication session
     * @param ownerSessionExists whether the holder's authentication session (its tab) still exists
     */
    static Wait decide(ClaimOwner owner, ClaimOwner me, boolean ownerSessionExists) {
        if (owner == null) {
            return Wait.WAIT;
        }
        if (owner.equals(me)) {
            return Wait.OWN;
        }
        return ownerSessionExists ? Wait.WAIT : Wait.TAKE_OVER;
    }
}
