"""The self-serve portal: a customer's IT contact sets up SSO and renews the client secret
through a one-time link, instead of mailing secrets and waiting for tickets.

Server-rendered (Starlette + Jinja2), works without JavaScript, strict headers. It calls
the same library functions as ``apsis-sso`` (``provisioning.onboarding``) with the same
Keycloak service account, and the invitations of ``apsis_core.invitations``; it never
imports ``sync`` or the CLI modules (``tests/unit/test_layers.py``).
"""
