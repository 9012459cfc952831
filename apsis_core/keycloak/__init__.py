"""Keycloak for every part: the port the accounts' code asks (``port.KeycloakPort``) and the
thin repository over its Admin REST API that implements it (``repository``)."""

from apsis_core.keycloak.port import KeycloakPort
from apsis_core.keycloak.repository import KeycloakRepository

__all__ = ["KeycloakPort", "KeycloakRepository"]
