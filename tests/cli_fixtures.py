"""Fixtures for the apsis-sso CLI tests (see tests/test_cli_*.py)."""
