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
import org.keycloak.representations.JsonWebToken;

/**
 * Binds an Okta account's sign-in to the customer's org: the validated token's {@code iss} must
 * be the issuer the account was set up with, exactly ({@link IssuerBinding}). Keycloak checks the
 * issuer too when the provider has one configured; this mapper makes the binding the account's own
 * record, independent of how the provider's endpoints are configured, and refuses with a page of
 * ours. The user id stays Okta's {@code sub} (the same in every app of the org, never reused).
 */
public class OktaIssuerMapper extends AbstractIdentityProviderMapper {

    public static final String PROVIDER_ID = Contract.OKTA_ISSUER_MAPPER;
    public static final String ISSUER = "issuer";

    static final String ISSUER_MISMATCH_MESSAGE = ProviderKind.OKTA.messageKey("tenant_mismatch");

    private static final Logger LOG = Logger.getLogger(OktaIssuerMapper.class);
    private static final String[] COMPATIBLE_PROVIDERS = {"oidc", "keycloak-oidc"};

    @Override
    public void preprocessFederatedIdentity(KeycloakSession session, RealmModel realm, IdentityProviderMapperModel mapperModel,
                                            BrokeredIdentityContext context) {
        String alias = context.getIdpConfig().getAlias();
        JsonWebToken token = Claims.validatedToken(context);
        String issuer = token == null ? null : token.getIssuer();
        String configured = mapperModel.getConfig() == null ? null : mapperModel.getConfig().get(ISSUER);
        if (!IssuerBinding.bound(configured, issuer)) {
            // The provider claimed this person's first login just before; it ends here.
            if (context.getId() != null && session != null) {
                FirstLogins.release(session, realm, alias, context.getId());
            }
            LOG.warnf("Login through %s refused: token issuer %s is not the configured issuer %s", alias,
                    LogText.clean(issuer), LogText.clean(configured));
            throw new IdentityBrokerException("Okta token from issuer " + LogText.clean(issuer) + " at identity provider "
                    + alias).withMessageCode(ISSUER_MISMATCH_MESSAGE);
        }
    }

    /** Nothing is written, only checked, so every sync mode is safe. */
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
        return "Okta issuer binding";
    }

    @Override
    public String getHelpText() {
        return "Fails the login unless the token's iss is exactly the configured Okta issuer (the org's or a custom"
                + " authorization server's).";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        ProviderConfigProperty issuer = new ProviderConfigProperty();
        issuer.setName(ISSUER);
        issuer.setLabel("Issuer");
        issuer.setHelpText("The Okta authorization server's issuer, e.g. https://acme.okta.com.");
        issuer.setType(ProviderConfigProperty.STRING_TYPE);
        return List.of(issuer);
    }
}
