"""The HTML the emulator shows a browser: the sign-in form, an error page, the form_post hop.

The form's inputs are ``username`` and ``password`` (Okta's classic sign-in page names) and the
submit button has id ``okta-signin-submit``; errors sit in ``.okta-form-infobox-error``.
"""

from __future__ import annotations

from devenv.entra_emulator.web import escape

_STYLE = (
    "body{font-family:Arial,sans-serif;background:#f9f9f9}"
    "main{background:#fff;max-width:400px;margin:60px auto;padding:40px;border:1px solid #ddd}"
    "input{display:block;width:100%;margin:8px 0 16px;padding:6px}"
    ".okta-form-infobox-error{color:#d93934}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="brand">okta</div>{body}</main></body></html>'
    )


def sign_in(action: str, params: dict[str, str], org: str, app: str, username: str = "", error: str = "") -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items())
    error_html = f'<div class="okta-form-infobox-error" role="alert">{escape(error)}</div>' if error else ""
    return _page(
        f"{org} - Sign In",
        "<h1>Sign In</h1>"
        f'<div id="appName">{escape(app)}</div>{error_html}'
        f'<form id="form19" method="post" action="{escape(action)}">{hidden}'
        f'<input type="text" name="username" id="okta-signin-username" autocomplete="username" value="{escape(username)}">'
        '<input type="password" name="password" id="okta-signin-password" autocomplete="current-password">'
        '<input type="submit" id="okta-signin-submit" value="Sign In"></form>',
    )


def error_page(error: str, description: str) -> str:
    return _page(
        "Error",
        f'<h1>400 Bad Request</h1><div id="error-code">{escape(error)}</div>'
        f'<div id="error-description">{escape(description)}</div>',
    )


def form_post(redirect_uri: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    return (
        '<!DOCTYPE html><html><head><title>Redirecting</title></head><body onload="document.forms[0].submit()">'
        f'<form method="POST" action="{escape(redirect_uri)}">{inputs}'
        '<noscript><input type="submit" value="Continue"></noscript></form></body></html>'
    )


def signed_out() -> str:
    return _page("Signed out", "<h1>You have been signed out</h1>")
