"""The unit lane keeps its promise: no connection leaves a unit test."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.unit


def test_a_unit_test_cannot_open_a_connection():
    with pytest.raises(OSError, match="the unit lane makes no network connections"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
