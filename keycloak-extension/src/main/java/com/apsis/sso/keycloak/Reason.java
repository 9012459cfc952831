package com.apsis.sso.keycloak;

/**
 * Why an SSO login was refused. The codes are part of the shared contract
 * (docs/contracts.md): they appear as the {@code reason} detail of the
 * {@code apsis_sso_refused} login event and pick the sentence on the error page.
 */
public enum Reason {
    NO_ORGANIZATION("no_organization"),
    SSO_DISABLED("sso_disabled"),
    EMAIL_MISSING("email_missing"),
    EMAIL_UNVERIFIED("email_unverified"),
    DOMAIN_NOT_ALLOWED("domain_not_allowed"),
    DOMAIN_UNPROVEN("domain_unproven"),
    NO_USER("no_user"),
    AMBIGUOUS_EMAIL("ambiguous_email"),
    USER_DISABLED("user_disabled"),
    NOT_MEMBER("not_member"),
    NOT_PILOT("not_pilot"),
    LINKED_TO_OTHER_IDENTITY("linked_to_other_identity");

    /** Event error shared by every refusal; the reason tells them apart. */
    public static final String EVENT_ERROR = Contract.REFUSAL_EVENT_ERROR;

    private final String code;

    Reason(String code) {
        this.code = code;
    }

    /** Machine-readable code, e.g. {@code not_pilot}. */
    public String code() {
        return code;
    }

    /** Whether the refused person can still sign in with their password (all but a deactivated user). */
    public boolean passwordHelps() {
        return this != USER_DISABLED;
    }

    /** Key of the sentence in theme-resources/messages, e.g. {@code apsisSso.not_pilot}. */
    public String messageKey() {
        return messageKey(ProviderKind.ENTRA);
    }

    /** The sentence for an account of {@code kind} (each names its own directory). */
    public String messageKey(ProviderKind kind) {
        return kind.messageKey(code);
    }
}
