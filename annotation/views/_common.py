"""Small helpers the annotation pages share."""

from core.models import Role
from core.pages import role_required

# The project's owner, auditors (read-only, like everywhere) and staff: who reads a
# project's analysis, quality controls and governance reports.
staff_role_readers = role_required(Role.RESEARCHER, Role.AUDITOR, staff=True)


def item_image_url(item_id: int) -> str:
    """The API's access-checked endpoint serving the sanitised copy of an item's image."""
    return f"/api/v1/items/{int(item_id)}/image/"
