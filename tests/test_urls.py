"""Media is never served by URL: images reach browsers only through the access-checked view."""

from django.urls import URLPattern, URLResolver, get_resolver
from django.views import static


def _callbacks(patterns: list[URLPattern | URLResolver]) -> list[object]:
    found: list[object] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found.extend(_callbacks(pattern.url_patterns))
        else:
            found.append(pattern.callback)
    return found


def test_url_patterns_static_serve_absent_from_every_route() -> None:
    callbacks = _callbacks(get_resolver().url_patterns)
    assert callbacks, "the resolver should list routes"
    assert static.serve not in callbacks


def test_media_url_stored_file_path_not_routed(client) -> None:
    response = client.get("/media/items/1/ab/ab.png")
    assert response.status_code == 404
