package com.apsis.sso.keycloak;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import jakarta.persistence.EntityManager;
import jakarta.persistence.TypedQuery;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.provider.Provider;

/**
 * The links of one identity provider read in one JPQL query ({@code FederatedIdentityEntity}
 * joined with its {@code UserEntity}, only the columns a row needs), and the organizations those
 * users are members of in a second one (the organization's group memberships), so the daemon
 * learns who is a member of which account without a request per user.
 *
 * <p>Why not the user provider: {@code searchForUserStream(IDP_ALIAS)} returns users without their
 * link, so each row then needed {@code getFederatedIdentity}, which through the user cache loads the
 * whole user and its links, two to three queries per user; on a cold cache that was 8 ms per link
 * (4.05 s for 500 links, 5.75 s of a 9.86 s 10,000-user initial sync). Here a page of 1,000 is one
 * query ordered by user id, paged by key ({@code after}), so the cost of a page does not grow with
 * its place in the listing. Reading the database directly is safe for this read-only view: it is
 * what the caches are filled from, and a cluster's nodes share it. Only users stored by Keycloak
 * itself (not a user-storage federation) have links here, which is all this project creates.
 */
final class LinkRows {

    private static final String SELECT = "select u.id, f.userId, u.email, u.enabled, u.username"
            + " from FederatedIdentityEntity f join f.user u"
            + " where u.realmId = :realm and f.identityProvider = :alias";

    private static final String USERS_BY_EMAIL = "select u.id, u.email, u.enabled, u.username from UserEntity u"
            + " where u.realmId = :realm and u.email in :emails";

    private static final String LINKS_OF_USERS = "select f.user.id, f.userId from FederatedIdentityEntity f"
            + " where f.identityProvider = :alias and f.user.id in :users";

    private static final String ORGANIZATIONS = "select m.user.id, o.id, o.alias"
            + " from UserGroupMembershipEntity m, OrganizationEntity o"
            + " where o.groupId = m.groupId and o.realmId = :realm and m.user.id in :users";

    /**
     * {@code org.keycloak.connections.jpa.JpaConnectionProvider} by name: keycloak-model-jpa cannot
     * be a compile dependency (its parent POM is not published on Maven Central); Keycloak's runtime
     * has it whenever users live in its database.
     */
    private static final String JPA_PROVIDER = "org.keycloak.connections.jpa.JpaConnectionProvider";

    private LinkRows() {
    }

    static List<Map<String, Object>> read(KeycloakSession session, RealmModel realm, String alias, LinksQuery query) {
        EntityManager em = entityManager(session);
        TypedQuery<Object[]> q;
        if (query.byOid()) {
            q = em.createQuery(SELECT + " and f.userId in :oids", Object[].class).setParameter("oids", query.oids());
        } else if (query.after() != null) {
            q = em.createQuery(SELECT + " and u.id > :after order by u.id", Object[].class)
                    .setParameter("after", query.after()).setMaxResults(query.max());
        } else {
            q = em.createQuery(SELECT + " order by u.id", Object[].class)
                    .setFirstResult(query.first()).setMaxResults(query.max());
        }
        List<Object[]> links = q.setParameter("realm", realm.getId()).setParameter("alias", alias).getResultList();
        return rows(em, realm, links, r -> (String) r[1]);
    }

    /**
     * The realm's users with these addresses (stored lowercased by Keycloak), each with its link to
     * {@code alias} ({@code oid} null when there is none) and its organizations: what matching a
     * user who never signed in with SSO asks, for up to {@value LinksQuery#MAX_OIDS} addresses in
     * three queries instead of three requests per address.
     */
    static List<Map<String, Object>> byEmail(KeycloakSession session, RealmModel realm, String alias, List<String> emails) {
        EntityManager em = entityManager(session);
        List<Object[]> users = em.createQuery(USERS_BY_EMAIL, Object[].class)
                .setParameter("realm", realm.getId()).setParameter("emails", emails).getResultList();
        Map<String, String> oids = new HashMap<>();
        if (!users.isEmpty()) {
            em.createQuery(LINKS_OF_USERS, Object[].class).setParameter("alias", alias)
                    .setParameter("users", users.stream().map(r -> (String) r[0]).toList())
                    .getResultStream().forEach(r -> oids.put((String) r[0], (String) r[1]));
        }
        return rows(em, realm, users.stream().map(r -> new Object[] {r[0], null, r[1], r[2], r[3]}).toList(),
                r -> oids.get((String) r[0]));
    }

    /** {@code [userId, _, email, enabled, username]} rows with their oid and organizations. */
    private static List<Map<String, Object>> rows(EntityManager em, RealmModel realm, List<Object[]> users,
                                                  Function<Object[], String> oid) {
        Map<String, List<Map<String, Object>>> organizations = organizations(em, realm,
                users.stream().map(r -> (String) r[0]).toList());
        return users.stream()
                .map(r -> LinksQuery.row((String) r[0], oid.apply(r), (String) r[2], (Boolean) r[3], (String) r[4],
                        organizations.getOrDefault((String) r[0], List.of())))
                .toList();
    }

    /** User id to its organizations as {@code {id, alias}}, as the Admin API's member listing names them. */
    private static Map<String, List<Map<String, Object>>> organizations(EntityManager em, RealmModel realm, List<String> users) {
        Map<String, List<Map<String, Object>>> byUser = new HashMap<>();
        if (users.isEmpty()) {
            return byUser;
        }
        em.createQuery(ORGANIZATIONS, Object[].class).setParameter("realm", realm.getId()).setParameter("users", users)
                .getResultStream()
                .forEach(r -> byUser.computeIfAbsent((String) r[0], k -> new ArrayList<>())
                        .add(LinksQuery.organization((String) r[1], (String) r[2])));
        return byUser;
    }

    private static EntityManager entityManager(KeycloakSession session) {
        try {
            Class<? extends Provider> type = Class.forName(JPA_PROVIDER).asSubclass(Provider.class);
            Method getter = type.getMethod("getEntityManager");
            return (EntityManager) getter.invoke(session.getProvider(type));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("Keycloak's JPA store is not available: " + e, e);
        }
    }
}
