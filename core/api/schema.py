"""OpenAPI schema post-processing: the refusals every API operation may answer.

``core.middleware`` and ``core.api.parsers`` refuse some requests before any view runs, on
every route: 400 for a NUL character in the address, query string or body (code
``nul_character``) or an invalid Content-Length, 411 for a chunked body, 413 for a body over
the route's limit. Each operation's schema lists them, in the one error shape.
"""

import copy
from typing import Any

from core.api.exceptions import ERROR_DESCRIPTIONS

ERROR_REF = {"$ref": "#/components/schemas/Error"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
REFUSALS = {
    "400": ERROR_DESCRIPTIONS[400],
    "411": "Length required: send the body with a Content-Length header (no chunked bodies).",
    "413": ERROR_DESCRIPTIONS[413],
}


def _error_content(responses: dict[str, Any]) -> dict[str, Any]:
    """The media types the operation already answers errors in (CSV endpoints list two)."""
    for response in responses.values():
        content = response.get("content") or {}
        if content and all(media.get("schema") == ERROR_REF for media in content.values()):
            return copy.deepcopy(content)
    return {"application/json": {"schema": dict(ERROR_REF)}}


def document_request_refusals(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the refusals to every operation."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            content = _error_content(responses)
            for status, description in REFUSALS.items():
                responses.setdefault(
                    status, {"content": copy.deepcopy(content), "description": description}
                )
    return result
