package com.apsis.sso.keycloak;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.OAuth2Constants;
import org.keycloak.broker.oidc.OIDCIdentityProvider;
import org.keycloak.broker.oidc.OIDCIdentityProviderConfig;
import org.keycloak.broker.provider.BrokeredIdentityContext;
import org.keycloak.events.EventBuilder;
import org.keycloak.events.EventType;
import org.keycloak.forms.login.LoginFormsProvider;
import org.keycloak.models.IdentityProviderModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.OrganizationModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * Keycloak's OpenID Connect identity provider, for the Entra providers apsis-sso manages, with
 * these additions at the broker endpoint (the redirect URI the customer registered):
 *
 * <ul>
 * <li>Entra's admin-consent answer ({@link AdminConsent}) gets a plain page of ours saying
 * whether consent was granted, what Entra said and what comes next, instead of Keycloak's
 * "Missing state parameter" error (or its "We are sorry" page for a refusal).</li>
 * <li>A user already linked but disabled in APSIS One gets the extension's refusal
 * ({@code user_disabled}) instead of Keycloak's "Account is disabled" error page.</li>
 * <li>Two tabs finishing one person's first login at once are serialised ({@link FirstLogins});
 * the claim ends with the first login (linked, refused or gone), so nobody waits for nothing.</li>
 * <li>{@code xms_edov} is kept exactly as sent, also when sent as JSON null ({@link Claims#keepAsSent}).</li>
 * <li>Several tabs of one linked person coming back at once are not taken for a password attack
 * ({@link SsoCallbackBruteForceProtector}).</li>
 * <li>Every login that succeeded passes the {@link Guard} (enabled, member, stage) before Keycloak
 * creates the session, and the session is marked with its account ({@link Guard#ACCOUNT_NOTE}).</li>
 * </ul>
 * Everything else is the superclass. See {@link EntraIdentityProviderFactory} for how it is
 * wired in without changing the providers' type.
 */
public class EntraIdentityProvider extends OIDCIdentityProvider {

    private static final Logger LOG = Logger.getLogger(EntraIdentityProvider.class);

    static final String CONSENT_GRANTED_TITLE = "apsisSso.consent_granted_title";
    static final String CONSENT_GRANTED = "apsisSso.consent_granted";
    static final String CONSENT_GRANTED_UNNAMED = "apsisSso.consent_granted_unnamed";
    static final String CONSENT_DECLINED_TITLE = "apsisSso.consent_declined_title";
    static final String CONSENT_DECLINED = "apsisSso.consent_declined";
    static final String CONSENT_REASON_PREFIX = "apsisSso.consent_reason.";
    static final String CONSENT_CODE = "apsisSso.consent_code";
    static final String CONSENT_NO_CODE = "apsisSso.consent_no_code";
    static final String TENANT_ATTRIBUTE = Contract.TENANT_ID_KEY;

    public EntraIdentityProvider(KeycloakSession session, OIDCIdentityProviderConfig config) {
        super(session, config);
    }

    @Override
    public Object callback(RealmModel realm, AuthenticationCallback callback, EventBuilder event) {
        return new ConsentAwareEndpoint(callback, realm, event, this);
    }

    @Override
    public void preprocessFederatedIdentity(KeycloakSession session, RealmModel realm, BrokeredIdentityContext context) {
        // Keycloak asks its brute-force protector about the linked user next; no password is
        // checked in this request (SsoCallbackBruteForceProtector).
        SsoCallbackBruteForceProtector.markSsoCallback(session);
        super.preprocessFederatedIdentity(session, realm, context);
        ProviderKind kind = ProviderKind.of(getConfig());
        Claims.keepAsSent(context, kind.emailVerifiedClaim());
        AuthenticationSessionModel authSession = session.getContext().getAuthenticationSession();
        // Okta's user id is the sub Keycloak already made the context's id; Entra's is the oid.
        String oid = kind == ProviderKind.OKTA ? text(context.getId()) : text(Claims.claim(context, "oid"));
        if (authSession == null || oid == null) {
            return; // not a browser login (token exchange), or the oid mapper refuses it next
        }
        String alias = getConfig().getAlias();
        UserModel linked = FirstLogins.linked(session, realm, alias, oid);
        if (linked == null) {
            linked = FirstLogins.linked(session, realm, alias, context.getId()); // a link made with the sub
        }
        if (linked == null) {
            FirstLogins.awaitConcurrent(session, realm, alias, oid, authSession);
            return;
        }
        if (!linked.isEnabled()) {
            // Keycloak would show "Account is disabled, contact your administrator" before the
            // post-broker guard runs; a refusal of ours says it in our words, with our event.
            Refusals.record(new EventBuilder(realm, session, session.getContext().getConnection())
                    .event(EventType.IDENTITY_PROVIDER_LOGIN), Reason.USER_DISABLED, alias, linked.getEmail(), linked);
            throw new WebApplicationException(Refusals.page(session, authSession, session.getContext().getUri(),
                    Reason.USER_DISABLED, kind));
        }
    }

    /**
     * Keycloak calls this on every brokered login that succeeded, first or returning, right
     * before it creates the user session: the one place every SSO login passes with its user
     * known (see {@link Guard} for why the checks run here and not in a post-broker-login flow).
     * A refusal is our page and event, thrown as the response; Keycloak then creates no session.
     */
    @Override
    public void authenticationFinished(AuthenticationSessionModel authSession, BrokeredIdentityContext context) {
        super.authenticationFinished(authSession, context);
        // A first login ends here, linked or refused: a second tab of the person need not wait.
        FirstLogins.finished(session, authSession);
        UserModel user = authSession.getAuthenticatedUser();
        IdentityProviderModel idp = getConfig();
        Guard.Verdict verdict = Guard.check(session, idp, user);
        if (!verdict.decision().allowed()) {
            RealmModel realm = authSession.getRealm();
            Refusals.record(new EventBuilder(realm, session, session.getContext().getConnection())
                    .event(EventType.IDENTITY_PROVIDER_LOGIN), verdict.decision().reason(), idp.getAlias(),
                    user.getEmail(), user);
            throw new WebApplicationException(Refusals.page(session, authSession, session.getContext().getUri(),
                    verdict.decision().reason(), ProviderKind.of(idp)));
        }
        // Which APSIS account this SSO session belongs to (the apsis-one client maps the note
        // to the apsis_account claim).
        authSession.setUserSessionNote(Guard.ACCOUNT_NOTE, verdict.organization().getAlias());
    }

    private static String text(Object value) {
        return value instanceof String s && !s.isBlank() ? s.trim() : null;
    }

    /** The broker endpoint: Keycloak's, with Entra's admin-consent answer handled first. */
    protected static class ConsentAwareEndpoint extends OIDCEndpoint {

        private final EntraIdentityProvider provider;

        public ConsentAwareEndpoint(AuthenticationCallback callback, RealmModel realm, EventBuilder event,
                                    EntraIdentityProvider provider) {
            super(callback, realm, event, provider);
            this.provider = provider;
        }

        @GET
        @Override
        public Response authResponse(@QueryParam(OAUTH2_PARAMETER_STATE) String state,
                                     @QueryParam(OAUTH2_PARAMETER_CODE) String authorizationCode,
                                     @QueryParam(OAuth2Constants.ERROR) String error,
                                     @QueryParam(OAuth2Constants.ERROR_DESCRIPTION) String errorDescription) {
            AdminConsent consent = AdminConsent.read(firstValues(session.getContext().getUri().getQueryParameters()));
            if (consent == null) {
                return super.authResponse(state, authorizationCode, error, errorDescription);
            }
            return consentPage(consent);
        }

        /**
         * The page after Entra's admin-consent answer. Anybody can send one (nothing in it is
         * signed), so the page repeats only what the query said, in our words: never the
         * account's name or configured tenant, never Entra's free text. Consent granted in a
         * tenant other than the account's is a warning in the log for the platform team.
         */
        private Response consentPage(AdminConsent consent) {
            String alias = provider.getConfig().getAlias();
            LoginFormsProvider form = session.getProvider(LoginFormsProvider.class);
            if (consent.granted()) {
                OrganizationModel organization = Accounts.organizationOf(session, provider.getConfig());
                String expected = organization == null ? null : first(organization.getAttributes().get(TENANT_ATTRIBUTE));
                if (consent.grantedInOtherTenant(expected)) {
                    LOG.warnf("Admin consent for %s reported in tenant %s, but the account's tenant is %s",
                            alias, LogText.clean(consent.tenant()), expected);
                } else {
                    LOG.infof("Admin consent for %s reported granted by Entra (tenant %s)", alias,
                            LogText.clean(consent.tenant()));
                }
                String tenant = consent.shownTenant();
                return form.setAttribute("messageHeader", CONSENT_GRANTED_TITLE)
                        .setInfo(tenant == null ? CONSENT_GRANTED_UNNAMED : CONSENT_GRANTED, tenant)
                        .createInfoPage();
            }
            LOG.infof("Admin consent for %s not granted: error %s, code %s (%s)", alias, LogText.clean(consent.error()),
                    consent.code(), LogText.clean(consent.errorDescription()));
            String said = form.getMessage(CONSENT_REASON_PREFIX + consent.reason());
            String code = consent.code() == null ? form.getMessage(CONSENT_NO_CODE) : form.getMessage(CONSENT_CODE, consent.code());
            return form.setAttribute("messageHeader", CONSENT_DECLINED_TITLE)
                    .setInfo(CONSENT_DECLINED, said, code)
                    .createInfoPage();
        }

        private static Map<String, String> firstValues(MultivaluedMap<String, String> query) {
            Map<String, String> out = new HashMap<>();
            query.forEach((key, values) -> out.put(key, first(values)));
            return out;
        }

        private static String first(List<String> values) {
            return values == null || values.isEmpty() ? null : values.get(0);
        }
    }
}
