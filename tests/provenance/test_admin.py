"""Staff edits of sources in the Django admin: audited with old and new values."""

import pytest
from django.test import Client
from django.urls import reverse

from core.models import Role
from provenance.models import AuditEvent, LicenseCatalogEntry, Source
from provenance.services import source_get_or_create
from tests.admin_forms import admin_form_data
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(make_user(Role.RESEARCHER, is_staff=True, is_superuser=True))
    return client


def test_source_admin_url_creator_and_terms_change_audited_with_old_and_new_values(
    staff_client,
):
    source = source_get_or_create(
        owner=make_user(Role.RESEARCHER), name="City Archive", url="https://old.example/"
    )
    url = reverse("admin:provenance_source_change", args=[source.pk])
    data = admin_form_data(
        staff_client,
        url,
        url="https://archive.example/",
        creator="City of Example",
        collected_on="2024-05-01",
    )

    response = staff_client.post(url, data)

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.url == "https://archive.example/"
    (event,) = AuditEvent.objects.filter(action="admin.change", object_id=str(source.pk))
    assert event.object_type == "provenance.source"
    assert event.payload == {
        "fields": {
            "url": {"old": "https://old.example/", "new": "https://archive.example/"},
            "creator": {"old": "", "new": "City of Example"},
            "collected_on": {"old": None, "new": "2024-05-01"},
        }
    }


def test_source_admin_unchanged_save_logs_nothing(staff_client):
    source = source_get_or_create(owner=make_user(Role.RESEARCHER), name="City Archive")
    url = reverse("admin:provenance_source_change", args=[source.pk])

    response = staff_client.post(url, admin_form_data(staff_client, url))

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="admin.change").exists()


def test_source_admin_owner_and_name_read_only_and_no_add_or_delete(staff_client):
    source = source_get_or_create(owner=make_user(Role.RESEARCHER), name="City Archive")
    change_url = reverse("admin:provenance_source_change", args=[source.pk])

    form = staff_client.get(change_url).context["adminform"].form

    assert "owner" not in form.fields and "name" not in form.fields
    assert staff_client.get(reverse("admin:provenance_source_add")).status_code == 403
    delete_url = reverse("admin:provenance_source_delete", args=[source.pk])
    assert staff_client.get(delete_url).status_code == 403
    assert Source.objects.filter(pk=source.pk).exists()


def test_license_admin_change_logs_old_and_new_values_of_changed_fields_only(staff_client):
    entry = LicenseCatalogEntry.objects.get(spdx_id="MIT")
    url = reverse("admin:provenance_licensecatalogentry_change", args=[entry.pk])
    data = admin_form_data(staff_client, url, use="non-commercial", notes="checked")

    response = staff_client.post(url, data)

    assert response.status_code == 302
    (event,) = AuditEvent.objects.filter(action="license.change", object_id=str(entry.pk))
    assert event.payload["fields"] == {
        "use": {"old": entry.use, "new": "non-commercial"},
        "notes": {"old": entry.notes, "new": "checked"},
    }
