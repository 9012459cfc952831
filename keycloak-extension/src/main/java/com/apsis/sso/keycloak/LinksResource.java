package com.apsis.sso.keycloak;

import java.util.List;
import java.util.Map;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.NotFoundException;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;

/**
 * {@code GET /realms/{realm}/apsis-sso/links/{idpAlias}}: the users linked to an identity provider
 * with the link's user id (the Entra object id), in bulk. Keycloak's Admin API finds one user per
 * object id, or lists linked users without their link; the sync daemon needs "every link of this
 * account's provider" for a full resync and "the links of these object ids" for a round's changes,
 * one request per page, not one per user.
 *
 * <p>Query: {@code max} (default 100, at most 1000) with {@code after} (the last {@code userId} of
 * the previous page) or {@code first} (an offset, default 0) pages through every link ordered by
 * user id; or {@code oid} (repeatable, at most 100) answers those object ids only. Each request is
 * two database queries ({@link LinkRows}: the links, their organizations), whatever the page's size
 * or place in the listing. Answer:
 * {@code [{userId, oid, email, enabled, username, organizations: [{id, alias}]}]}. Authorised as the Admin
 * API authorises viewing every user ({@link AdminAccess}: a bearer token of this realm whose
 * token carries realm-management's {@code view-users}; 401 without a valid token, 403 without
 * the right), before any parameter is looked at; a malformed parameter is 400.
 */
public class LinksResource {

    private final KeycloakSession session;

    public LinksResource(KeycloakSession session) {
        this.session = session;
    }

    /**
     * {@code GET users?idp={alias}&email=…} (repeatable, 1 to 100): the realm's users with those
     * addresses as {@code [{userId, oid, email, enabled, username, organizations}]}, {@code oid}
     * being their link to {@code idp}, left out when there is none (Keycloak's JSON omits nulls).
     * Authorised as {@link #links}.
     */
    @GET
    @Path("users")
    @Produces(MediaType.APPLICATION_JSON)
    public Response users(@QueryParam("idp") String alias, @QueryParam("email") List<String> emails) {
        RealmModel realm = session.getContext().getRealm();
        requireViewUsers();
        List<String> wanted;
        try {
            wanted = LinksQuery.emails(emails);
        } catch (IllegalArgumentException e) {
            return badRequest(e);
        }
        requireProvider(alias);
        return Response.ok(LinkRows.byEmail(session, realm, alias, wanted)).header("Cache-Control", "no-store").build();
    }

    /** Where {@link IdentityProviderMappersResource} answers, under this resource. */
    public static final String IDP_MAPPERS = Contract.IDP_MAPPERS_PATH;

    @Path(IDP_MAPPERS)
    public IdentityProviderMappersResource idpMappers() {
        return new IdentityProviderMappersResource(session);
    }

    @GET
    @Path("links/{alias}")
    @Produces(MediaType.APPLICATION_JSON)
    public Response links(@PathParam("alias") String alias, @QueryParam("first") String first,
                          @QueryParam("max") String max, @QueryParam("after") String after,
                          @QueryParam("oid") List<String> oids) {
        // first and max are read as text: JAX-RS answers 404 to an Integer parameter it cannot
        // convert (max=abc, first=2147483648); LinksQuery says 400 and why.
        RealmModel realm = session.getContext().getRealm();
        requireViewUsers();
        LinksQuery query;
        try {
            query = LinksQuery.parse(first, max, after, oids);
        } catch (IllegalArgumentException e) {
            return badRequest(e);
        }
        requireProvider(alias);
        return Response.ok(LinkRows.read(session, realm, alias, query)).header("Cache-Control", "no-store").build();
    }

    /**
     * 401/403 before anything else is looked at: whoever may view every user of the realm in the
     * Admin API ({@code view-users} or {@code manage-users} in the token's scope, or the
     * fine-grained "view" of users), judged by {@link AdminAccess}.
     */
    private void requireViewUsers() {
        AdminAccess.of(session).users().requireView();
    }

    private static Response badRequest(IllegalArgumentException e) {
        return Response.status(400).entity(Map.of("error", e.getMessage())).type(MediaType.APPLICATION_JSON).build();
    }

    private void requireProvider(String alias) {
        if (alias == null || session.identityProviders().getByAlias(alias) == null) {
            throw new NotFoundException("no identity provider " + alias);
        }
    }
}
