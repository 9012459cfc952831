package com.apsis.sso.keycloak;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The safe-linking rules, free of Keycloak types so every branch is unit-tested. The
 * authenticators only gather these inputs and apply the decision. Checks run in the order of
 * the contract's reason table; the first that fails is the reason.
 */
public final class LinkPolicy {

    private LinkPolicy() {
    }

    /**
     * First SSO login: may the brokered identity be linked to an existing user, and to which one?
     *
     * @param account       the identity provider's organization, or null if it has none
     * @param email         the {@code email} claim, or null
     * @param emailVerified the ID token's {@code xms_edov} claim as sent (present or absent): present,
     *                      it must be the JSON boolean true; absent, the email is trusted only in a
     *                      domain proven to belong to the account's tenant (any tenant admin can set
     *                      any {@code mail}, and leave the optional claim out)
     * @param brokeredId    the brokered user id (the Entra object id once the oid mapper ran)
     * @param usersByEmail  finds the realm users with an email, case-insensitively (never by
     *                      username); only called once the cheaper checks passed
     */
    public static LinkDecision link(Account account, String email, Claim emailVerified,
                                    String brokeredId, Function<String, List<Candidate>> usersByEmail) {
        return link(account, ProviderKind.ENTRA, email, emailVerified, brokeredId, usersByEmail);
    }

    /**
     * The same for an account of any provider kind: {@code emailVerified} is the kind's claim
     * ({@link ProviderKind#emailVerifiedClaim}), judged by {@link EmailTrust}.
     */
    public static LinkDecision link(Account account, ProviderKind kind, String email, Claim emailVerified,
                                    String brokeredId, Function<String, List<Candidate>> usersByEmail) {
        if (account == null) {
            return LinkDecision.refuse(Reason.NO_ORGANIZATION);
        }
        if (account.stage().ssoOff()) {
            return LinkDecision.refuse(Reason.SSO_DISABLED);
        }
        if (email == null || email.isBlank()) {
            return LinkDecision.refuse(Reason.EMAIL_MISSING);
        }
        if (EmailTrust.unverified(kind, emailVerified)) {
            return LinkDecision.refuse(Reason.EMAIL_UNVERIFIED);
        }
        if (!account.allowsDomainOf(email)) {
            return LinkDecision.refuse(Reason.DOMAIN_NOT_ALLOWED);
        }
        if (EmailTrust.needsProvenDomain(kind, emailVerified) && !account.provesDomainOf(email)) {
            return LinkDecision.refuse(Reason.DOMAIN_UNPROVEN);
        }
        List<Candidate> matches = sameEmail(email, usersByEmail.apply(email));
        if (matches.isEmpty()) {
            return LinkDecision.refuse(Reason.NO_USER);
        }
        if (matches.size() > 1) {
            return LinkDecision.refuse(Reason.AMBIGUOUS_EMAIL);
        }
        Candidate user = matches.get(0);
        LinkDecision admitted = admit(account, user.id(), user.enabled(), user.member(), email);
        if (!admitted.allowed()) {
            return admitted;
        }
        if (user.linkedIdentityId() != null && !user.linkedIdentityId().equals(brokeredId)) {
            return LinkDecision.refuse(Reason.LINKED_TO_OTHER_IDENTITY);
        }
        return admitted;
    }

    /**
     * Every SSO login, after the user is known (post-broker-login): is this user still allowed
     * to use SSO for this account? Uses the user's own email, not the token's: the link is by
     * object id and the email in Entra may change.
     *
     * @param account the identity provider's organization, or null if it has none
     */
    public static LinkDecision guard(Account account, String userId, boolean enabled, boolean member,
                                     String userEmail) {
        if (account == null) {
            return LinkDecision.refuse(Reason.NO_ORGANIZATION);
        }
        if (account.stage().ssoOff()) {
            return LinkDecision.refuse(Reason.SSO_DISABLED);
        }
        return admit(account, userId, enabled, member, userEmail);
    }

    /** The checks shared by both: enabled, member, and on the pilot list while in pilot. */
    private static LinkDecision admit(Account account, String userId, boolean enabled, boolean member,
                                      String email) {
        if (!enabled) {
            return LinkDecision.refuse(Reason.USER_DISABLED);
        }
        if (!member) {
            return LinkDecision.refuse(Reason.NOT_MEMBER);
        }
        if (account.stage() == Stage.PILOT && !account.isPilot(email)) {
            return LinkDecision.refuse(Reason.NOT_PILOT);
        }
        return LinkDecision.link(userId);
    }

    /** Re-checks the store's answer: equal emails ignoring case, each user counted once. */
    private static List<Candidate> sameEmail(String email, List<Candidate> found) {
        Map<String, Candidate> byId = new LinkedHashMap<>();
        if (found != null) {
            for (Candidate c : found) {
                if (c != null && c.id() != null && c.email() != null
                        && Ascii.equalsIgnoreCase(c.email().trim(), email.trim())) {
                    byId.putIfAbsent(c.id(), c);
                }
            }
        }
        return List.copyOf(byId.values());
    }

}
