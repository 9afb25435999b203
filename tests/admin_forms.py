"""Drive Django admin change forms the way a browser does: start from what the page shows;
then read back what the save audited."""

from typing import Any

from django.db import models
from django.test import Client

from provenance.models import AuditEvent


def admin_form_data(client: Client, url: str, /, **changes: Any) -> dict[str, Any]:
    """The POST body the change form at ``url`` submits unedited, with ``changes`` applied.

    Values come from the rendered form's bound fields, so they are spelled as the page
    spells them (foreign keys as ids, JSON as text); an unchecked box is left out, as a
    browser leaves it out. A change of ``False`` unticks a box.
    """
    response = client.get(url)
    assert response.status_code == 200, url
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is None:
            data[name] = ""
        elif isinstance(value, list | tuple):
            data[name] = [str(inner) for inner in value]
        else:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


def admin_changes(obj: models.Model) -> list[AuditEvent]:
    """The ``admin.change`` events recorded for ``obj``."""
    return list(
        AuditEvent.objects.filter(
            action="admin.change", object_type=obj._meta.label_lower, object_id=str(obj.pk)
        )
    )
