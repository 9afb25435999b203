"""One source of a name per owner (see 0005_source_owner)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0006_source_owner_data"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="source",
            constraint=models.UniqueConstraint(
                fields=("owner", "name"), name="source_owner_name_unique"
            ),
        ),
    ]
