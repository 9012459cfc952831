package com.apsis.sso.keycloak;

import java.util.List;

import org.jboss.logging.Logger;
import org.keycloak.broker.provider.AbstractIdentityProviderMapper;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.broker.provider.IdentityBrokerException;
import org.keycloak.models.IdentityProviderMapperModel;
import org.keycloak.models.IdentityProviderSyncMode;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.provider.ProviderConfigProperty;

/**
 * Makes the Entra object id ({@code oid}) the brokered user id. Entra's {@code sub} is pairwise
 * per app registration, so links keyed by it break when a customer registers a new app; the
 * {@code oid} does not change, and Graph's user id equals it. Keycloak looks the link up, and
 * creates it, with the context's id after the mappers ran (IdentityBrokerService#authenticated).
 */
public class EntraObjectIdMapper extends AbstractIdentityProviderMapper {

    public static final String PROVIDER_ID = Contract.OID_MAPPER;
    public static final String TENANT_ID = "tenantId";

    static final String OID_MISSING_MESSAGE = "apsisSso.oid_missing";
    static final String TENANT_MISMATCH_MESSAGE = "apsisSso.tenant_mismatch";

    private static final Logger LOG = Logger.getLogger(EntraObjectIdMapper.class);
    private static final String[] COMPATIBLE_PROVIDERS = {"oidc", "keycloak-oidc"};

    @Override
    public void preprocessFederatedIdentity(KeycloakSession session, RealmModel realm, IdentityProviderMapperModel mapperModel,
                                            BrokeredIdentityContext context) {
        String alias = context.getIdpConfig().getAlias();
        String oid = text(Claims.claim(context, "oid"));
        if (oid == null) {
            LOG.warnf("Login through %s refused: the validated token has no oid claim", alias);
            throw new IdentityBrokerException("Entra token without oid claim from identity provider " + alias)
                    .withMessageCode(OID_MISSING_MESSAGE);
        }
        String tenant = text(mapperModel.getConfig().get(TENANT_ID));
        String tid = text(Claims.claim(context, "tid"));
        if (tenant != null && !tenant.equalsIgnoreCase(tid)) {
            // The provider claimed this person's first login just before; it ends here.
            FirstLogins.release(session, realm, alias, oid);
            LOG.warnf("Login through %s refused: token tenant %s is not the configured tenant %s", alias,
                    LogText.clean(tid), tenant);
            throw new IdentityBrokerException("Entra token from tenant " + tid + " at identity provider " + alias)
                    .withMessageCode(TENANT_MISMATCH_MESSAGE);
        }
        String previous = context.getId();
        context.setId(oid);
        context.setBrokerUserId(alias + "." + oid);
        if (previous != null && !previous.equals(oid)) {
            // A link made before this mapper was added holds the sub. Keycloak tries the legacy id
            // when the oid finds no link and then rewrites that link to the oid.
            context.setLegacyId(previous);
        }
    }

    private static String text(Object value) {
        return value instanceof String s && !s.isBlank() ? s.trim() : null;
    }

    /** Only the id changes, and only in preprocessing, so every sync mode is safe. */
    @Override
    public boolean supportsSyncMode(IdentityProviderSyncMode syncMode) {
        return true;
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String[] getCompatibleProviders() {
        return COMPATIBLE_PROVIDERS.clone();
    }

    @Override
    public String getDisplayCategory() {
        return "Preprocessor";
    }

    @Override
    public String getDisplayType() {
        return "Entra object id as user id";
    }

    @Override
    public String getHelpText() {
        return "Uses the Entra object id (oid claim) instead of the pairwise sub as the identity provider link's user id,"
                + " so links survive a new app registration. Fails the login if the token has no oid, or if a tenant id"
                + " is configured and the token's tid differs.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        ProviderConfigProperty tenant = new ProviderConfigProperty();
        tenant.setName(TENANT_ID);
        tenant.setLabel("Tenant ID");
        tenant.setHelpText("Optional. The Entra tenant id (GUID) the tokens must come from (tid claim).");
        tenant.setType(ProviderConfigProperty.STRING_TYPE);
        return List.of(tenant);
    }
}
