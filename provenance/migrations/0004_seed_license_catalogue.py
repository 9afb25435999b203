"""Seed the license catalogue from ``provenance/data/license_classes.csv``.

Rows that exist (staff may have edited them) are left alone; only missing ids are added.
Reversing removes nothing: the catalogue may hold staff's edits by then.
"""

import csv
from pathlib import Path

from django.db import migrations

SEED = Path(__file__).resolve().parent.parent / "data" / "license_classes.csv"


def seed(apps, schema_editor):
    entry = apps.get_model("provenance", "LicenseCatalogEntry")
    existing = set(entry.objects.values_list("spdx_id", flat=True))
    with SEED.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["spdx_id"] not in existing]
    entry.objects.bulk_create(
        entry(
            spdx_id=row["spdx_id"],
            name=row["name"],
            use=row["use"],
            attribution=row["attribution"] == "true",
            share_alike=row["share_alike"] == "true",
            no_derivatives=row["no_derivatives"] == "true",
            terms_url=row["terms_url"],
            source_url=row["source_url"],
            notes=row["notes"],
        )
        for row in rows
    )


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0003_audit_append_only"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
