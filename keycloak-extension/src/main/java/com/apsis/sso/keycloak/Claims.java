package com.apsis.sso.keycloak;

import java.io.IOException;
import java.util.Map;

import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.representations.JsonWebToken;
import org.keycloak.util.JsonSerialization;

/** Claims of the token Keycloak validated during the broker login. */
final class Claims {

    /** Context-data key prefix of claims kept as sent ({@link #keepAsSent}). */
    static final String SENT_PREFIX = "apsis.claim.";

    private Claims() {
    }

    /**
     * The validated ID token, else the validated access token (token exchange has only that),
     * else null. Both are put into the context data by OIDCIdentityProvider and survive the
     * serialisation into the first-broker-login note.
     */
    static JsonWebToken validatedToken(BrokeredIdentityContext context) {
        Map<String, Object> data = context.getContextData();
        if (data.get(OIDCIdentityProvider.VALIDATED_ID_TOKEN) instanceof JsonWebToken idToken) {
            return idToken;
        }
        if (data.get(OIDCIdentityProvider.VALIDATED_ACCESS_TOKEN) instanceof JsonWebToken accessToken) {
            return accessToken;
        }
        return null;
    }

    /** A claim outside the JWT registered ones (those are fields of JsonWebToken), or null. */
    static Object claim(BrokeredIdentityContext context, String name) {
        return sent(context, name).value();
    }

    /**
     * Keeps a claim exactly as sent across Keycloak's serialisation of the brokered context
     * into the first-broker-login note: that serialisation leaves out claims sent as JSON null
     * (Keycloak's JSON mapper skips nulls), so "xms_edov: null" would read as absent later.
     * Called while the validated token is still the one Keycloak parsed.
     */
    static void keepAsSent(BrokeredIdentityContext context, String name) {
        JsonWebToken token = validatedToken(context);
        if (token == null || !token.getOtherClaims().containsKey(name)) {
            return;
        }
        try {
            context.getContextData().put(SENT_PREFIX + name, JsonSerialization.writeValueAsString(token.getOtherClaims().get(name)));
        } catch (IOException e) {
            throw new IllegalStateException("cannot keep claim " + name, e);
        }
    }

    /** The same claim, telling "absent" apart from "sent as null". */
    static Claim sent(BrokeredIdentityContext context, String name) {
        if (context.getContextData().get(SENT_PREFIX + name) instanceof String json) {
            try {
                return Claim.of(JsonSerialization.readValue(json, Object.class));
            } catch (IOException e) {
                throw new IllegalStateException("cannot read kept claim " + name, e);
            }
        }
        JsonWebToken token = validatedToken(context);
        if (token == null || !token.getOtherClaims().containsKey(name)) {
            return Claim.ABSENT;
        }
        return Claim.of(token.getOtherClaims().get(name));
    }
}
