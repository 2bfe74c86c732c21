"""GraphQL over HTTP (the GraphQL-over-HTTP specification): the response's media type
chosen from the request's Accept header, and the status codes that go with it.

- `application/graphql-response+json` when the client accepts it (it is preferred
  over `application/json` at equal quality); `application/json` otherwise, also when
  the header is absent or names neither (the spec allows either answer there; the
  legacy type keeps old clients working).
- With `application/graphql-response+json` a request error (unparsable JSON, a
  document that does not parse or validate, variables that do not fit, no operation
  to run) is a 4xx (400) with `errors` and no `data`; once execution started the
  status is 200, errors or not.
- With `application/json` every well-formed GraphQL request is 200 (the legacy
  behaviour clients rely on); malformed HTTP requests are 4xx as before.
- Errors the HTTP layer raises (strawberry's HTTPException: unparsable JSON, an
  unsupported content type, a GET mutation) are JSON `{"errors": [...]}` in the
  negotiated type, not plain text.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_ACCEPTED = {GRAPHQL_RESPONSE_JSON: 2, JSON: 1, "application/*": 0, "*/*": 0}


def negotiate(accept: str | None) -> str:
    """The response media type for an Accept header."""
    if not accept:
        return JSON
    best, best_key = JSON, (-1.0, -1)
    for part in accept.split(","):
        media, *params = part.strip().split(";")
        media = media.strip().lower()
        rank = _ACCEPTED.get(media)
        if rank is None:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        key = (quality, rank)
        if key > best_key:
            best_key = key
            best = GRAPHQL_RESPONSE_JSON if media == GRAPHQL_RESPONSE_JSON else JSON
    return best


def content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8"


def is_request_error(result: Any) -> bool:
    """A result that failed before execution started: no data and no error that
    belongs to a field (parse, validation, variable coercion, operation selection)."""
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)


def error_response(message: str, status: int, media_type: str, code: str = "BAD_REQUEST") -> Response:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    return Response(body, status_code=status, media_type=content_type(media_type))
