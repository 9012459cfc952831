package com.apsis.sso.keycloak;

/**
 * A realm user whose email equals the brokered email, with the facts the policy checks.
 *
 * @param id               Keycloak user id
 * @param email            the user's email in Keycloak
 * @param enabled          whether the user is enabled
 * @param member           whether the user is a member of the identity provider's organization
 * @param linkedIdentityId user id of the user's existing link to this identity provider, or null
 */
public record Candidate(String id, String email, boolean enabled, boolean member, String linkedIdentityId) {
}
