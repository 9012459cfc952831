"""Fixtures for the apsis-sync tests (see tests/test_sync_*.py)."""
