package com.apsis.sso.keycloak;

import java.util.Set;

import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.authenticators.browser.WebAuthnConditionalUIAuthenticator;
import org.keycloak.models.AuthenticationExecutionModel.Requirement;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.credential.WebAuthnCredentialModel;
import org.keycloak.organization.authentication.authenticators.browser.OrganizationAuthenticator;

/**
 * Registers {@link IdentityFirstAuthenticator} as {@value #PROVIDER_ID}. The realm's browser flow
 * is Keycloak's own, copied, with this step in place of Keycloak's "organization" step.
 */
public class IdentityFirstAuthenticatorFactory extends ApsisAuthenticatorFactory {

    public static final String PROVIDER_ID = Contract.IDENTITY_FIRST_AUTHENTICATOR;

    /** Where Keycloak's organization step sits in its browser flow. */
    static final Requirement[] CHOICES = {Requirement.ALTERNATIVE, Requirement.REQUIRED, Requirement.DISABLED};

    @Override
    public Authenticator create(KeycloakSession session) {
        return new IdentityFirstAuthenticator(new OrganizationAuthenticator(session));
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public Requirement[] getRequirementChoices() {
        return CHOICES.clone();
    }

    /** Like Keycloak's organization step: passkeys may sign a person in on this page. */
    @Override
    public Set<String> getOptionalReferenceCategories(KeycloakSession session) {
        return WebAuthnConditionalUIAuthenticator.isPasskeysEnabled(session)
                ? Set.of(WebAuthnCredentialModel.TYPE_PASSWORDLESS)
                : Set.of();
    }

    @Override
    public String getDisplayType() {
        return "APSIS: identity-first login with SSO by email domain";
    }

    @Override
    public String getHelpText() {
        return "Keycloak's Organization identity-first login, except that an address in the domain of an organization"
                + " whose identity provider redirects when the email domain matches goes to that provider even when the"
                + " user has a password. Every other address gets the password form, whether or not a user has it.";
    }
}
