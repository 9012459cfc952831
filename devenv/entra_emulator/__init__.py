"""A local Microsoft Entra ID (identity platform v2.0) and Microsoft Graph v1.0 emulator for tests
and the demo. See README.md for what it covers, the Python and HTTP control APIs, and the
Microsoft documentation each response shape follows."""

from .server import EntraEmulator
from .state import Application, NotFound, PasswordCredential, Tenant, User

__all__ = ["Application", "EntraEmulator", "NotFound", "PasswordCredential", "Tenant", "User"]
