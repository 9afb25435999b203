"""Sources get an owner; a name is unique per owner, no longer across everyone.

Until now the first importer's source row was shared by name with every later importer.
0006_source_owner_data assigns the owners, 0007_source_owner_name_unique adds the
(owner, name) constraint.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0004_seed_license_catalogue"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="source",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="source",
            name="name",
            field=models.CharField(max_length=200),
        ),
    ]
