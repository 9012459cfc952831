package com.apsis.sso.keycloak;

import java.util.List;

import jakarta.ws.rs.core.MultivaluedMap;

import org.jboss.logging.Logger;
import org.keycloak.WebAuthnConstants;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.authenticators.browser.AbstractUsernameFormAuthenticator;
import org.keycloak.authentication.authenticators.browser.IdentityProviderAuthenticator;
import org.keycloak.authentication.authenticators.util.AuthenticatorUtils;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ModelDuplicateException;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.OrganizationModel.IdentityProviderRedirectMode;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.utils.KeycloakModelUtils;
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
 * organization settings ({@link DomainRedirect}).
 *
 * <p>Every address that is not redirected gets the password form, whoever has it: Keycloak's
 * step answers an unknown address in an organization's domain (a pilot, awaiting-setup or
 * disabled account's) with "Your email domain matches an organization but you don't have an
 * account yet", a disabled user with an error page, and an existing one with the password form,
 * which tells anyone who has an account ({@link AddressStep}). Keycloak's step still shows the
 * first page, passkeys, and a login whose user is already known.
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
        // The application passed the address (login_hint): no page at all for SSO users. A login
        // coming back from a failed broker login is not sent back there (no loop).
        String hint = context.getAuthenticationSession().getClientNote(OIDCLoginProtocol.LOGIN_HINT_PARAM);
        if (handled(context, hint, context.getForwardedErrorMessage() == null, null)) {
            return;
        }
        keycloakIdentityFirst.authenticate(context);
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        boolean passkey = form.containsKey(WebAuthnConstants.AUTHENTICATOR_DATA) || form.containsKey(WebAuthnConstants.ERROR);
        if (!passkey && handled(context, form.getFirst(UserModel.USERNAME), true, form)) {
            return;
        }
        keycloakIdentityFirst.action(context);
    }

    /** Redirects or shows the password form as {@link AddressStep} says; false: Keycloak's step decides. */
    private boolean handled(AuthenticationFlowContext context, String address, boolean redirectAllowed,
                            MultivaluedMap<String, String> form) {
        boolean userKnown = context.getUser() != null;
        String broker = address == null || address.isBlank() || userKnown || !redirectAllowed
                || Boolean.parseBoolean(context.getAuthenticationSession().getClientNote(PASSWORD_CHOSEN_NOTE))
                ? null : brokerFor(context.getSession(), address);
        switch (AddressStep.of(address, userKnown, broker)) {
            case BROKER -> {
                LOG.debugf("Address in a domain of %s: redirecting to it", broker);
                redirect(context, broker, address.trim());
                return true;
            }
            case PASSWORD_FORM -> {
                passwordForm(context, address, form);
                return true;
            }
            default -> {
                return false;
            }
        }
    }

    /**
     * What Keycloak's organization step does for an address in no organization: remember the
     * address, hide the username field, and go on to the password form, with the user set when
     * one may sign in with a password (the form checks it). Done for every address that is not
     * redirected, so an unknown, a disabled and an existing address get the same page.
     */
    private static void passwordForm(AuthenticationFlowContext context, String address,
                                     MultivaluedMap<String, String> form) {
        if (form != null && form.containsKey("rememberMe")) {
            AuthenticatorUtils.processRememberMe(context, form);
        }
        String typed = address.trim();
        AuthenticationSessionModel authSession = context.getAuthenticationSession();
        authSession.removeAuthNote(OrganizationModel.ORGANIZATION_ATTRIBUTE);
        UserModel user = existingUser(context, typed);
        if (user != null && AddressStep.identifies(true, user.isEnabled(), user.getServiceAccountClientLink() != null)) {
            context.setUser(user);
        }
        authSession.setAuthNote(AbstractUsernameFormAuthenticator.ATTEMPTED_USERNAME, typed);
        authSession.setAuthNote(AbstractUsernameFormAuthenticator.USERNAME_HIDDEN, Boolean.TRUE.toString());
        context.attempted();
    }

    private static UserModel existingUser(AuthenticationFlowContext context, String address) {
        try {
            return KeycloakModelUtils.findUserByNameOrEmail(context.getSession(), context.getRealm(), address);
        } catch (ModelDuplicateException e) {
            return null; // two users claim the address: the password form cannot tell them apart either
        }
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
