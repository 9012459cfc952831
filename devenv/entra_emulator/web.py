"""Tiny request/response values so endpoint handlers are plain functions, independent of the server."""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path, without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        if "application/x-www-form-urlencoded" not in self.header("content-type"):
            return {}
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        doc = json.loads(self.body)
        if not isinstance(doc, dict):
            raise ValueError("the request body must be a JSON object")
        return doc

    @property
    def client_request_id(self) -> str:
        return self.header("client-request-id") or self.request_id


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        doc: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> Response:
        return cls(status, json.dumps(doc).encode(), {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def html(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8", **(headers or {})})

    @classmethod
    def redirect(cls, location: str, headers: dict[str, str] | None = None) -> Response:
        return cls(302, b"", {"Location": location, **(headers or {})})


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)
