package com.apsis.sso.keycloak;

import java.util.List;

import jakarta.ws.rs.core.MultivaluedMap;

import org.jboss.logging.Logger;
import org.keycloak.WebAuthnConstants;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.authenticators.browser.IdentityProviderAuthenticator;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.OrganizationModel.IdentityProviderRedirectMode;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.organization.OrganizationProvider;
import org.keycloak.protocol.oidc.OIDCLoginProtocol;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * The login page's identity-first step: Keycloak's own Organization identity-first login, plus
 * one thing it deliberately does not do. Keycloak redirects an address in an organization's
 * domain to the organization's identity provider only when the user has no password
 * ({@code OrganizationAuthenticator#tryRedirectBroker}: "the user has credentials set; do not
 * redirect"). Every APSIS One user has a password, so a live account's members would always get
 * the password form. This step redirects by the address's domain alone, whoever the user is
 * (so the page reveals nothing about who has an account), following the identity provider's
 * organization settings ({@link DomainRedirect}); everything else is Keycloak's step unchanged.
 *
 * <p>Not redirected: an address outside every live account's domains (contractors get the
 * password form), a login that comes back from a failed broker login (no loop), and a login
 * whose SSO was refused and the person chose the password ({@link #PASSWORD_CHOSEN_NOTE}).
 */
public class IdentityFirstAuthenticator extends IdentityProviderAuthenticator {

    private static final Logger LOG = Logger.getLogger(IdentityFirstAuthenticator.class);

    /** Client note set with a refusal page: this login goes on with the password form. */
    static final String PASSWORD_CHOSEN_NOTE = "apsis.passwordChosen";

    private final Authenticator keycloakIdentityFirst;

    IdentityFirstAuthenticator(Authenticator keycloakIdentityFirst) {
        this.keycloakIdentityFirst = keycloakIdentityFirst;
    }

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        // The application passed the address (login_hint): no page at all for SSO users.
        String hint = context.getAuthenticationSession().getClientNote(OIDCLoginProtocol.LOGIN_HINT_PARAM);
        if (context.getUser() == null && context.getForwardedErrorMessage() == null && redirected(context, hint)) {
            return;
        }
        keycloakIdentityFirst.authenticate(context);
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        boolean passkey = form.containsKey(WebAuthnConstants.AUTHENTICATOR_DATA) || form.containsKey(WebAuthnConstants.ERROR);
        if (!passkey && redirected(context, form.getFirst(UserModel.USERNAME))) {
            return;
        }
        keycloakIdentityFirst.action(context);
    }

    private boolean redirected(AuthenticationFlowContext context, String address) {
        AuthenticationSessionModel authSession = context.getAuthenticationSession();
        if (address == null || Boolean.parseBoolean(authSession.getClientNote(PASSWORD_CHOSEN_NOTE))) {
            return false;
        }
        String alias = brokerFor(context.getSession(), address);
        if (alias == null) {
            return false;
        }
        LOG.debugf("Address in a domain of %s: redirecting to it", alias);
        redirect(context, alias, address.trim());
        return true;
    }

    /** The identity provider an address goes to by its domain, or null. */
    static String brokerFor(KeycloakSession session, String address) {
        String domain = DomainRedirect.domainOf(address);
        OrganizationProvider organizations = session.getProvider(OrganizationProvider.class);
        if (domain == null || organizations == null || !organizations.isEnabled()) {
            return null;
        }
        OrganizationModel organization = organizations.getByDomainName(domain);
        if (organization == null || !organization.isEnabled()) {
            return null;
        }
        List<DomainRedirect.Broker> brokers = organization.getIdentityProviders()
                .map(idp -> new DomainRedirect.Broker(idp.getAlias(), idp.isEnabled(),
                        IdentityProviderRedirectMode.EMAIL_MATCH.isSet(idp),
                        idp.getConfig().get(OrganizationModel.ORGANIZATION_DOMAIN_ATTRIBUTE)))
                .toList();
        return DomainRedirect.brokerFor(domain, brokers);
    }

    @Override
    public boolean requiresUser() {
        return keycloakIdentityFirst.requiresUser();
    }

    @Override
    public boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        return keycloakIdentityFirst.configuredFor(session, realm, user);
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
        keycloakIdentityFirst.setRequiredActions(session, realm, user);
    }

    @Override
    public void close() {
        keycloakIdentityFirst.close();
    }
}
