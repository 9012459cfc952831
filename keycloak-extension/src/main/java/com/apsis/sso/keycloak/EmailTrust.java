package com.apsis.sso.keycloak;

/**
 * When a provider's email claim may be trusted for linking (a tenant's admin can set any user's
 * address, so the claim alone proves nothing). Pure, unit-tested in {@code EmailTrustTest}.
 *
 * <ul>
 * <li>Entra: {@code xms_edov}, when sent, must be JSON true; without it the address is trusted
 * only in a domain proven to belong to the account's tenant ({@link #needsProvenDomain}).</li>
 * <li>Okta: {@code email_verified} must be sent and be JSON true; Okta has no per-domain proof
 * of its own, so the org's issuer (bound at setup) and the account's domains are the rest.</li>
 * </ul>
 */
public final class EmailTrust {

    private EmailTrust() {
    }

    /** True when the claim as sent says the address is not verified: refused as email_unverified. */
    public static boolean unverified(ProviderKind kind, Claim verified) {
        Claim sent = verified == null ? Claim.ABSENT : verified;
        if (kind == ProviderKind.OKTA) {
            return !sent.present() || !Boolean.TRUE.equals(sent.value());
        }
        return sent.present() && !Boolean.TRUE.equals(sent.value());
    }

    /** True when the address may be trusted only in a domain proven for the account's tenant. */
    public static boolean needsProvenDomain(ProviderKind kind, Claim verified) {
        return kind == ProviderKind.ENTRA && (verified == null || !verified.present());
    }
}
