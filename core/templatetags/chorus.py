"""Template filters for Chorus pages.

``markdown`` is the only place user-written text becomes HTML: it is rendered with the
``markdown`` package and then sanitised with ``nh3`` (an allowlist), so a researcher's
instructions cannot run script in an annotator's browser.
"""

import json
from typing import Any

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Text formatting only: no images, image maps or forms, so instructions cannot make the
# annotator's browser fetch third-party resources.
MARKDOWN_TAGS = frozenset(nh3.ALLOWED_TAGS) - {"img", "area", "map"}
MARKDOWN_EXTENSIONS = ["extra", "sane_lists"]


def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML (scripts, event handlers and javascript: URLs removed)."""
    html = markdown_lib.markdown(text or "", extensions=MARKDOWN_EXTENSIONS)
    return nh3.clean(html, tags=set(MARKDOWN_TAGS), url_schemes={"http", "https", "mailto"})


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    # The output of nh3 is safe by construction; nothing else in the templates is marked so.
    return mark_safe(render_markdown(str(text)))  # noqa: S308 - sanitised by nh3 above


@register.filter(name="as_json")
def as_json(value: Any) -> str:
    """Pretty JSON as plain text; the template's autoescaping still applies."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter(name="percent_of")
def percent_of(part: int, whole: int) -> int:
    """Whole percentage for progress bars; 0 when the whole is empty."""
    return round(100 * part / whole) if whole else 0
