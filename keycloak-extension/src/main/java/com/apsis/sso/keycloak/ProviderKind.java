package com.apsis.sso.keycloak;

import java.util.Map;

import org.keycloak.models.IdentityProviderModel;

/**
 * Where an account's users sign in: Microsoft Entra ID or Okta, read from the identity
 * provider's config ({@link Contract#PROVIDER_KEY}; absent is Entra, so every account made
 * before there was a choice keeps its rules). Each kind names the claims its rules read; the
 * rules themselves are one class each ({@link EmailTrust}, {@link IssuerBinding}, and the Entra
 * tenant check in {@link EntraObjectIdMapper}).
 */
public enum ProviderKind {
    /** Links keyed by {@code oid}; an email trusted by {@code xms_edov} or a proven domain. */
    ENTRA("oid", "xms_edov", "apsisSso."),
    /** Links keyed by {@code sub}; an email trusted only with {@code email_verified} true. */
    OKTA("sub", "email_verified", "apsisSso.okta.");

    private final String userIdClaim;
    private final String emailVerifiedClaim;
    private final String messagePrefix;

    ProviderKind(String userIdClaim, String emailVerifiedClaim, String messagePrefix) {
        this.userIdClaim = userIdClaim;
        this.emailVerifiedClaim = emailVerifiedClaim;
        this.messagePrefix = messagePrefix;
    }

    /** The kind a config value names; anything but {@code okta} (absent, blank, unknown) is Entra. */
    public static ProviderKind of(String value) {
        return value != null && value.trim().equalsIgnoreCase("okta") ? OKTA : ENTRA;
    }

    public static ProviderKind of(IdentityProviderModel idp) {
        Map<String, String> config = idp == null ? null : idp.getConfig();
        return of(config == null ? null : config.get(Contract.PROVIDER_KEY));
    }

    /** The immutable user id claim that keys the link. */
    public String userIdClaim() {
        return userIdClaim;
    }

    /** The claim that says whether the directory verified the email. */
    public String emailVerifiedClaim() {
        return emailVerifiedClaim;
    }

    /** The page's sentence for a message code ({@code not_pilot}, {@code tenant_mismatch}): each
     *  kind names its own directory ("your Microsoft account", "your Okta account"). */
    public String messageKey(String code) {
        return messagePrefix + code;
    }
}
