package com.apsis.sso.keycloak;

/**
 * Every name this extension shares with Keycloak's configuration and the Python tooling: provider
 * ids, attribute and session-note keys, the event error and the admin-consent state
 * (docs/contracts.md). The Python side holds the same names in {@code apsis_core/contract.py};
 * {@code tests/unit/test_contract.py} checks that each constant here is the one of the same name
 * there, and that no other class of the extension spells one out. Other classes name these
 * constants, never the literals.
 */
public final class Contract {
    private Contract() {
    }

    // -- providers, resources and flows' parts --------------------------------------------------
    public static final String SAFE_LINK_AUTHENTICATOR = "apsis-safe-link";
    public static final String SSO_GUARD_AUTHENTICATOR = "apsis-sso-guard";
    public static final String IDENTITY_FIRST_AUTHENTICATOR = "apsis-identity-first";
    public static final String OID_MAPPER = "apsis-entra-oid-mapper";
    public static final String OKTA_ISSUER_MAPPER = "apsis-okta-issuer-mapper";
    public static final String LINKS_RESOURCE = "apsis-sso";
    public static final String IDP_MAPPERS_PATH = "idp-mappers";
    public static final String ADMIN_CONSENT_STATE = "apsis-admin-consent";

    // -- what the tooling writes on organizations and identity providers ------------------------
    public static final String MANAGED_BY_KEY = "apsis.managedBy";
    public static final String MANAGED_BY = "apsis-sso";
    public static final String STAGE_KEY = "apsis.stage";
    public static final String AWAITING_SETUP = "awaiting-setup";
    public static final String PILOT_KEY = "apsis.pilot";
    public static final String TENANT_ID_KEY = "apsis.tenantId";
    /** The account's provider kind, also in its identity provider's config ({@link ProviderKind}). */
    public static final String PROVIDER_KEY = "apsis.provider";
    public static final String DOMAIN_PROOFS_KEY = "apsis.domainProofs";
    /** The proof method the daily re-check records ({@code apsis_core.domain_ownership.METHOD_DISCOVERY}). */
    public static final String METHOD_DISCOVERY = "discovery";
    public static final String ANY_DOMAIN = "ANY";

    // -- what a login leaves behind -------------------------------------------------------------
    public static final String ACCOUNT_SESSION_NOTE = "apsis.account";
    public static final String REFUSAL_EVENT_ERROR = "apsis_sso_refused";
}
