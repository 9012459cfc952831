package com.apsis.sso.keycloak;

import java.util.Objects;

/** Outcome of a policy check: either the user to link (or let in), or the reason to refuse. */
public record LinkDecision(String userId, Reason reason) {

    public LinkDecision {
        if ((userId == null) == (reason == null)) {
            throw new IllegalArgumentException("exactly one of userId and reason must be set");
        }
    }

    public static LinkDecision link(String userId) {
        return new LinkDecision(Objects.requireNonNull(userId), null);
    }

    public static LinkDecision refuse(Reason reason) {
        return new LinkDecision(null, Objects.requireNonNull(reason));
    }

    public boolean allowed() {
        return reason == null;
    }
}
