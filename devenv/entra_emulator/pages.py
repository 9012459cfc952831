"""The HTML the emulator shows a browser: sign-in form, error page, form_post hop, signed-out page.

Element names follow Microsoft's sign-in page where a test might select them: the inputs are
``login`` and ``passwd`` and the submit button has id ``idSIButton9``. Errors carry the AADSTS
number in ``data-aadsts`` so tests need not parse prose.
"""

from __future__ import annotations

from .errors import AadError
from .web import escape

_STYLE = """
body{font-family:"Segoe UI",Arial,sans-serif;background:#f2f2f2;margin:0}
main{background:#fff;max-width:440px;margin:60px auto;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:16px 0}
input[type=text],input[type=email],input[type=password]{width:100%;padding:6px 0;margin:8px 0 16px;
border:none;border-bottom:1px solid #666;font-size:15px}
input[type=submit]{background:#0067b8;color:#fff;border:none;padding:8px 32px;font-size:15px;float:right}
.error{color:#e81123;margin:8px 0}
.details{font-size:12px;color:#666;margin-top:32px}
""".strip()


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="brand">Microsoft</div>{body}</main></body></html>'
    )


def sign_in_form(
    action: str,
    params: dict[str, str],
    tenant_name: str,
    app_name: str,
    login: str = "",
    error: AadError | None = None,
    error_text: str = "",
) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in params.items()
        if k not in ("login", "passwd")
    )
    error_html = ""
    if error is not None:
        error_html = (
            f'<div id="errorText" class="error" role="alert" data-aadsts="{error.code}">'
            f"{escape(error_text or error.message)}</div>"
        )
    body = (
        "<h1>Sign in</h1>"
        f'<div id="appName">to continue to {escape(app_name)}</div>'
        f'<div id="tenantName">{escape(tenant_name)}</div>'
        f"{error_html}"
        f'<form id="i0281" method="post" action="{escape(action)}">{hidden}'
        f'<input type="text" name="login" id="i0116" placeholder="Email, phone, or Skype" '
        f'autocomplete="username" value="{escape(login)}">'
        '<input type="password" name="passwd" id="i0118" placeholder="Password" '
        'autocomplete="current-password">'
        '<input type="submit" id="idSIButton9" value="Sign in">'
        "</form>"
    )
    return _page("Sign in to your account", body)


def error_page(error: AadError, request_id: str, correlation_id: str, timestamp: str) -> str:
    body = (
        "<h1>Sign in</h1>"
        "<div>Sorry, but we're having trouble signing you in.</div>"
        f'<div id="errorText" class="error" data-aadsts="{error.code}">{escape(error.description)}</div>'
        '<div class="details">Troubleshooting details<br>'
        f"Request Id: {escape(request_id)}<br>Correlation Id: {escape(correlation_id)}<br>"
        f"Timestamp: {escape(timestamp)}</div>"
    )
    return _page("Sign in to your account", body)


def form_post(redirect_uri: str, fields: dict[str, str]) -> str:
    """response_mode=form_post: a page that posts the response to the client at once."""
    inputs = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    return (
        "<!DOCTYPE html><html><head><title>Working...</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="POST" name="hiddenform" action="{escape(redirect_uri)}">{inputs}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit"></noscript></form></body></html>'
    )


def signed_out() -> str:
    return _page(
        "Sign out", "<h1>You signed out of your account</h1><div>It's a good idea to close all browser windows.</div>"
    )


def admin_consent(
    action: str,
    params: dict[str, str],
    tenant_name: str,
    app_name: str,
    permissions: list[str],
    error: AadError | None = None,
    login: str = "",
) -> str:
    """The admin-consent prompt: an administrator signs in and accepts or cancels for the tenant."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in params.items()
        if k not in ("login", "passwd", "consent")
    )
    error_html = ""
    if error is not None:
        error_html = (
            f'<div id="errorText" class="error" role="alert" data-aadsts="{error.code}">{escape(error.message)}</div>'
        )
    listed = "".join(f"<li>{escape(p)}</li>" for p in ["Sign in and read user profile", *permissions])
    body = (
        "<h1>Permissions requested</h1>"
        f'<div id="appName">{escape(app_name)}</div>'
        f'<div id="tenantName">Accept for your organization ({escape(tenant_name)})</div>'
        f"<ul>{listed}</ul>{error_html}"
        f'<form id="consent" method="post" action="{escape(action)}">{hidden}'
        f'<input type="text" name="login" placeholder="Administrator" autocomplete="username" value="{escape(login)}">'
        '<input type="password" name="passwd" placeholder="Password" autocomplete="current-password">'
        '<button type="submit" name="consent" value="cancel" id="idBtn_Back">Cancel</button>'
        '<button type="submit" name="consent" value="accept" id="idSIButton9">Accept</button>'
        "</form>"
    )
    return _page("Permissions requested", body)
