package com.apsis.sso.keycloak;

import java.util.List;
import java.util.Locale;

/**
 * Rollout stage of an account, from the organization attribute {@code apsis.stage}.
 * {@link #AWAITING_SETUP} ({@code awaiting-setup}): the customer's IT has not set SSO up yet; such an
 * account has no identity provider, and should one appear it is refused like a disabled one.
 */
public enum Stage {
    AWAITING_SETUP, PILOT, LIVE, DISABLED;

    public static final String ATTRIBUTE = Contract.STAGE_KEY;

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
                case Contract.AWAITING_SETUP:
                    return AWAITING_SETUP;
                default:
                    return PILOT;
            }
        }
        return PILOT;
    }

    /** SSO is off in this stage: nobody signs in through the account's Entra. */
    public boolean ssoOff() {
        return this == DISABLED || this == AWAITING_SETUP;
    }
}
