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

import org.keycloak.models.AdminRoles;
import org.keycloak.models.ClientModel;
import org.keycloak.models.Constants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RoleModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager.AuthResult;

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
 * {@code [{userId, oid, email, enabled, username, organizations: [{id, alias}]}]}. Authorised like the Admin
 * API's user listing: a bearer token of this realm whose user holds realm-management's
 * {@code view-users} (401 without a valid token, 403 without the role).
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
        Response refused = refusal(realm);
        if (refused != null) {
            return refused;
        }
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
    public static final String IDP_MAPPERS = "idp-mappers";

    @Path(IDP_MAPPERS)
    public IdentityProviderMappersResource idpMappers() {
        return new IdentityProviderMappersResource(session);
    }

    @GET
    @Path("links/{alias}")
    @Produces(MediaType.APPLICATION_JSON)
    public Response links(@PathParam("alias") String alias, @QueryParam("first") Integer first,
                          @QueryParam("max") Integer max, @QueryParam("after") String after,
                          @QueryParam("oid") List<String> oids) {
        RealmModel realm = session.getContext().getRealm();
        Response refused = refusal(realm);
        if (refused != null) {
            return refused;
        }
        LinksQuery query;
        try {
            query = LinksQuery.of(first, max, after, oids);
        } catch (IllegalArgumentException e) {
            return badRequest(e);
        }
        requireProvider(alias);
        return Response.ok(LinkRows.read(session, realm, alias, query)).header("Cache-Control", "no-store").build();
    }

    /** 401/403 before anything else is looked at, or null when the caller may read. */
    private Response refusal(RealmModel realm) {
        AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        int access = LinksQuery.access(auth != null, auth != null && viewUsers(realm, auth.user()));
        return access == 200 ? null : Response.status(access).header("Cache-Control", "no-store").build();
    }

    private static Response badRequest(IllegalArgumentException e) {
        return Response.status(400).entity(Map.of("error", e.getMessage())).type(MediaType.APPLICATION_JSON).build();
    }

    private void requireProvider(String alias) {
        if (alias == null || session.identityProviders().getByAlias(alias) == null) {
            throw new NotFoundException("no identity provider " + alias);
        }
    }

    private static boolean viewUsers(RealmModel realm, UserModel user) {
        ClientModel management = realm.getClientByClientId(Constants.REALM_MANAGEMENT_CLIENT_ID);
        RoleModel role = management == null ? null : management.getRole(AdminRoles.VIEW_USERS);
        return user != null && role != null && user.hasRole(role);
    }
}
