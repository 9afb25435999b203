from django.db import migrations, models


def forget_fingerprints_of_results_without_figures(apps, schema_editor):
    """Every result stored so far predates its plots: forgetting the fingerprint it was
    computed from makes it read as stale, so that the next refresh draws them."""
    AgreementAnalysis = apps.get_model("annotation", "AgreementAnalysis")
    AgreementAnalysis.objects.update(fingerprint="")


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_annotation_consent"),
    ]

    operations = [
        migrations.AddField(
            model_name="agreementanalysis",
            name="figures",
            field=models.JSONField(blank=True, default=dict),
        ),
        # Reversing keeps the rows stale: the fingerprints are gone, and a refresh restores them.
        migrations.RunPython(
            forget_fingerprints_of_results_without_figures, migrations.RunPython.noop
        ),
    ]
