"""How far the audit chain has been verified, so the audit page checks only newer events.

A separate single-row table: the append-only trigger of 0003 covers the events alone, and
appends, which lock ``AuditChainHead``, never wait on a check.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0007_source_owner_name_unique"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.BigIntegerField(default=0)),
                (
                    "hash",
                    models.CharField(blank=True, help_text="Empty at the genesis.", max_length=64),
                ),
                ("verified_at", models.DateTimeField(blank=True, null=True)),
                ("full_check_at", models.DateTimeField(blank=True, null=True)),
                ("full_check_ok", models.BooleanField(blank=True, null=True)),
                ("full_check_events", models.BigIntegerField(default=0)),
                ("full_check_broken_seq", models.BigIntegerField(blank=True, null=True)),
                ("full_check_reason", models.CharField(blank=True, max_length=200)),
            ],
        ),
    ]
