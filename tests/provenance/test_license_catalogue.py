"""The license catalogue in the database: seeded, editable by staff, audited."""

import pytest
from django.urls import reverse

from core.errors import ValidationFailed
from core.models import Role
from provenance.licenses import classify, seed_entries
from provenance.models import AuditEvent, LicenseCatalogEntry, LicenseUse
from provenance.selectors import license_table
from provenance.services import license_catalogue_seed, license_entry_save
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def test_license_catalogue_migration_seeds_every_csv_row():
    assert set(LicenseCatalogEntry.objects.values_list("spdx_id", flat=True)) == {
        entry.spdx_id for entry in seed_entries()
    }


def test_license_catalogue_seed_after_flush_restores_rows_and_keeps_edits():
    LicenseCatalogEntry.objects.exclude(spdx_id="CC-BY-4.0").delete()
    LicenseCatalogEntry.objects.filter(spdx_id="CC-BY-4.0").update(notes="edited by staff")

    added = license_catalogue_seed()

    assert added == len(seed_entries()) - 1
    assert LicenseCatalogEntry.objects.get(spdx_id="CC-BY-4.0").notes == "edited by staff"


def test_license_table_staff_edit_changes_classification():
    entry = LicenseCatalogEntry.objects.get(spdx_id="CC-BY-4.0")
    entry.use = LicenseUse.NON_COMMERCIAL
    license_entry_save(entry=entry, actor=make_user(Role.RESEARCHER, is_staff=True))

    assert classify("CC-BY-4.0", table=license_table()).use == "non-commercial"
    assert AuditEvent.objects.filter(action="license.change").exists()


def test_license_entry_save_license_ref_without_terms_refused():
    entry = LicenseCatalogEntry(spdx_id="LicenseRef-Lab-Only", name="Lab only", use="academic-only")

    with pytest.raises(ValidationFailed):
        license_entry_save(entry=entry, actor=None)
    assert not LicenseCatalogEntry.objects.filter(spdx_id="LicenseRef-Lab-Only").exists()


def test_license_entry_save_license_ref_registered_is_accepted_by_parse():
    from provenance.licenses import parse

    license_entry_save(
        entry=LicenseCatalogEntry(
            spdx_id="LicenseRef-Lab-Only",
            name="Lab only",
            use="academic-only",
            attribution=True,
            terms_url="https://lab.example.org/terms",
        ),
        actor=None,
    )

    table = license_table()
    assert parse("licenseref-lab-only", table=table) == "LicenseRef-Lab-Only"
    assert classify("LicenseRef-Lab-Only", table=table).use == "academic-only"
    assert AuditEvent.objects.filter(action="license.register").exists()


def test_license_admin_staff_edit_audited_and_delete_not_offered(client):
    staff = make_user(Role.RESEARCHER, is_staff=True, is_superuser=True)
    client.force_login(staff)
    entry = LicenseCatalogEntry.objects.get(spdx_id="MIT")
    url = reverse("admin:provenance_licensecatalogentry_change", args=[entry.pk])
    data = {
        "spdx_id": "MIT",
        "name": entry.name,
        "use": "commercial",
        "attribution": "on",
        "terms_url": entry.terms_url,
        "source_url": entry.source_url,
        "notes": "checked",
    }

    response = client.post(url, data)

    assert response.status_code == 302
    assert LicenseCatalogEntry.objects.get(pk=entry.pk).notes == "checked"
    assert AuditEvent.objects.filter(action="license.change", object_id=str(entry.pk)).exists()
    delete_url = reverse("admin:provenance_licensecatalogentry_delete", args=[entry.pk])
    assert client.get(delete_url).status_code == 403


def test_license_admin_license_ref_without_terms_is_a_form_error(client):
    client.force_login(make_user(Role.RESEARCHER, is_staff=True, is_superuser=True))
    url = reverse("admin:provenance_licensecatalogentry_add")

    response = client.post(url, {"spdx_id": "LicenseRef-X", "name": "X", "use": "academic-only"})

    assert response.status_code == 200
    assert "needs the URL of its terms" in response.content.decode()
    assert not LicenseCatalogEntry.objects.filter(spdx_id="LicenseRef-X").exists()
