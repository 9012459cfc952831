"""Error bodies shaped like Microsoft's.

* Identity platform (``login.microsoftonline.com``): the OAuth error JSON documented at
  https://learn.microsoft.com/entra/identity-platform/reference-error-codes#handling-error-codes-in-your-application
  (``error``, ``error_description`` ending in Trace ID / Correlation ID / Timestamp lines,
  ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``).
* Microsoft Graph: the ``{"error": {"code", "message", "innerError"}}`` object documented at
  https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class AadError:
    """One AADSTS error: the OAuth ``error`` string, the HTTP status and Microsoft's message."""

    code: int
    error: str
    status: int
    message: str

    def body(self, correlation_id: str | None = None) -> dict[str, object]:
        now = dt.datetime.now(dt.UTC)
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.message}"


def tenant_not_found(tenant: str, discovery: bool = False) -> AadError:
    # The discovery document answers "invalid_tenant"; the token endpoint "invalid_request".
    return AadError(
        90002,
        "invalid_tenant" if discovery else "invalid_request",
        400,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def app_not_found(app_id: str, tenant_name: str) -> AadError:
    return AadError(
        700016,
        "unauthorized_client",
        400,
        f"Application with identifier '{app_id}' was not found in the directory '{tenant_name}'. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant.",
    )


def invalid_secret(app_id: str) -> AadError:
    return AadError(
        7000215,
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        f"secret value, not the client secret ID, for a secret added to app '{app_id}'.",
    )


def expired_secret(app_id: str) -> AadError:
    return AadError(
        7000222,
        "invalid_client",
        401,
        f"The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to "
        "create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
        "certificate credentials for added security: https://aka.ms/certCreds.",
    )


def missing_client_credential() -> AadError:
    return AadError(
        7000218,
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def missing_parameter(name: str) -> AadError:
    return AadError(900144, "invalid_request", 400, f"The request body must contain the following parameter: '{name}'.")


def unsupported_grant_type(grant_type: str) -> AadError:
    return AadError(
        70003, "unsupported_grant_type", 400, f"The app requested an unsupported grant type '{grant_type}'."
    )


def scope_needs_default(scope: str) -> AadError:
    return AadError(
        1002012,
        "invalid_scope",
        400,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI).",
    )


def resource_not_found(resource: str, tenant_name: str) -> AadError:
    return AadError(
        500011,
        "invalid_resource",
        400,
        f"The resource principal named {resource} was not found in the tenant named {tenant_name}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
    )


def code_redeemed() -> AadError:
    return AadError(
        54005,
        "invalid_grant",
        400,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid "
        "code or use an existing refresh token.",
    )


def code_expired() -> AadError:
    return AadError(
        70008,
        "invalid_grant",
        400,
        "The provided authorization code or refresh token has expired due to "
        "inactivity. Send a new interactive authorization request for this user and "
        "resource.",
    )


def code_invalid() -> AadError:
    return AadError(9002313, "invalid_grant", 400, "Invalid request. Request is malformed or invalid.")


def code_wrong_client() -> AadError:
    return AadError(
        70000,
        "invalid_grant",
        400,
        "The provided value for the 'code' parameter is not valid. The code was issued to a different client.",
    )


def reply_address_mismatch(sent: str, expected: str) -> AadError:
    return AadError(
        500112,
        "invalid_grant",
        400,
        f"The reply address '{sent}' does not match the reply address '{expected}' "
        "provided when requesting Authorization code.",
    )


def pkce_mismatch() -> AadError:
    return AadError(
        501481,
        "invalid_grant",
        400,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )


def redirect_uri_mismatch(redirect_uri: str, app_id: str) -> AadError:
    return AadError(
        50011,
        "invalid_request",
        400,
        f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
        f"URIs configured for the application '{app_id}'. Make sure the redirect URI sent in the "
        "request matches one added to your application in the Azure portal. Navigate to "
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    )


def unsupported_response_type(response_type: str) -> AadError:
    return AadError(
        700054, "unsupported_response_type", 400, f"response_type '{response_type}' is not enabled for the application."
    )


def invalid_code_challenge_method() -> AadError:
    return AadError(50147, "invalid_request", 400, "The code_challenge_method parameter must be 'S256' or 'plain'.")


def login_required() -> AadError:
    return AadError(50058, "login_required", 400, "A silent sign-in request was sent but no user is signed in.")


def user_not_found(login: str, tenant_name: str) -> AadError:
    return AadError(
        50034,
        "invalid_grant",
        400,
        f"The user account {login} does not exist in the {tenant_name} directory. To "
        "sign into this application, the account must be added to the directory.",
    )


def bad_password() -> AadError:
    return AadError(50126, "invalid_grant", 400, "Error validating credentials due to invalid username or password.")


def user_disabled() -> AadError:
    return AadError(
        50057,
        "invalid_grant",
        400,
        "The user account is disabled. The user object in Active Directory backing this account has been disabled.",
    )


def method_not_allowed(method: str) -> AadError:
    return AadError(
        900561,
        "invalid_request",
        400,
        f"The endpoint only accepts POST, OPTIONS requests. Received a {method} request.",
    )


def temporarily_unavailable() -> AadError:
    return AadError(90033, "temporarily_unavailable", 503, "A transient error has occurred. Please try again.")


def throttled() -> AadError:
    return AadError(
        90055, "temporarily_unavailable", 429, "There are too many incoming requests. Please try again later."
    )


# ------------------------------------------------------------------ Graph


def graph_error(code: str, message: str, request_id: str, client_request_id: str) -> dict[str, object]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def graph_throttled(request_id: str, client_request_id: str) -> dict[str, object]:
    """The 429 body from https://learn.microsoft.com/graph/throttling#sample-response."""
    return {
        "error": {
            "code": "TooManyRequests",
            "innerError": {
                "code": "429",
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "message": "Please retry after",
                "request-id": request_id,
                "client-request-id": client_request_id,
                "status": "429",
            },
            "message": "Please retry again later.",
        }
    }
