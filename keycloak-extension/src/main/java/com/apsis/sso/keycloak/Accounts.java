package com.apsis.sso.keycloak;

import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.UserModel;
import org.keycloak.organization.OrganizationProvider;

/**
 * Reads the APSIS account behind an identity provider at login time, so one shared flow
 * serves every account and changes to stage or pilot list take effect on the next login.
 */
final class Accounts {

    private Accounts() {
    }

    /**
     * The organization the identity provider is linked to, or null when it has none, the
     * organization no longer exists, or Organizations are off for the realm (then Keycloak
     * ignores the link itself, so we treat the IdP as unlinked).
     */
    static OrganizationModel organizationOf(KeycloakSession session, IdentityProviderModel idp) {
        String organizationId = idp == null ? null : idp.getOrganizationId();
        if (organizationId == null) {
            return null;
        }
        OrganizationProvider organizations = session.getProvider(OrganizationProvider.class);
        if (organizations == null || !organizations.isEnabled()) {
            return null;
        }
        return organizations.getById(organizationId);
    }

    /**
     * The policy's view of an organization; a disabled organization means SSO is disabled. Its
     * proven domains are those whose proof names the organization's current tenant.
     */
    static Account accountOf(OrganizationModel organization) {
        if (organization == null) {
            return null;
        }
        Map<String, List<String>> attributes = organization.getAttributes();
        Stage stage = organization.isEnabled() ? Stage.of(attributes.get(Stage.ATTRIBUTE)) : Stage.DISABLED;
        List<Account.Domain> domains = organization.getDomains()
                .map(d -> new Account.Domain(d.getName(), d.isVerified()))
                .collect(Collectors.toList());
        List<String> tenant = attributes.get(Account.TENANT_ATTRIBUTE);
        return Account.of(stage, attributes.get(Account.PILOT_ATTRIBUTE), domains,
                Account.provenDomains(attributes.get(Account.PROOFS_ATTRIBUTE),
                        tenant == null || tenant.isEmpty() ? null : tenant.get(0)));
    }

    static boolean isMember(KeycloakSession session, OrganizationModel organization,
                            UserModel user) {
        return session.getProvider(OrganizationProvider.class).isMember(organization, user);
    }
}
