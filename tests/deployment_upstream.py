"""A stand-in for Chorus behind nginx in tests/test_deployment.py, served by gunicorn.

It has no database, so gunicorn starts in a fraction of a second:

- ``/replay/<name>``: answers with the status and headers a test recorded from a real
  Chorus response into ``$CHORUS_REPLAY_DIR/<name>.json`` (the image view's answer).
- anything else: the request as gunicorn handed it over (forwarded headers, body length).
"""

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

ECHOED = (
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_PROTO",
    "CONTENT_LENGTH",
    "HTTP_TRANSFER_ENCODING",
)


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path: str = environ["PATH_INFO"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    received = len(environ["wsgi.input"].read(length)) if length else 0
    if path.startswith("/replay/"):
        recorded = Path(os.environ["CHORUS_REPLAY_DIR"], f"{path.removeprefix('/replay/')}.json")
        answer = json.loads(recorded.read_text())
        start_response(answer["status"], [tuple(header) for header in answer["headers"]])
        return [answer["body"].encode("latin-1")]
    echoed = {key: environ.get(key) for key in ECHOED}
    body = json.dumps({**echoed, "received": received}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
