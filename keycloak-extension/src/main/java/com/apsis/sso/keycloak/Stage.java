package com.apsis.sso.keycloak;

import java.util.List;
import java.util.Locale;

/** Rollout stage of an account, from the organization attribute {@code apsis.stage}. */
public enum Stage {
    PILOT, LIVE, DISABLED;

    public static final String ATTRIBUTE = "apsis.stage";

    /**
     * Reads the attribute's first non-blank value. Missing means pilot (contract), and so does
     * anything unrecognised: a typo must never open SSO to every member.
     */
    public static Stage of(List<String> values) {
        if (values == null) {
            return PILOT;
        }
        for (String value : values) {
            if (value == null || value.isBlank()) {
                continue;
            }
            switch (value.trim().toLowerCase(Locale.ROOT)) {
                case "live":
                    return LIVE;
                case "disabled":
                    return DISABLED;
                default:
                    return PILOT;
            }
        }
        return PILOT;
    }
}
