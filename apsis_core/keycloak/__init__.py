"""Keycloak for every part: a thin repository over its Admin REST API (``repository``)."""

from apsis_core.keycloak.repository import KeycloakRepository

__all__ = ["KeycloakRepository"]
