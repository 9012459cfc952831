"""A local Okta emulator (org and custom authorization servers, service apps with
private_key_jwt, Users API, System Log API, rate limits) for tests and the demo. See README.md."""

from .model import NotFound, Refused, ServiceApp, User, WebApp
from .server import OktaEmulator

__all__ = ["NotFound", "OktaEmulator", "Refused", "ServiceApp", "User", "WebApp"]
