package com.apsis.sso.keycloak;

import java.util.Map;

import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.representations.JsonWebToken;

/** Claims of the token Keycloak validated during the broker login. */
final class Claims {

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
        JsonWebToken token = validatedToken(context);
        return token == null ? null : token.getOtherClaims().get(name);
    }
}
