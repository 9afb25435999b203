import django.db.models.deletion
from django.db import migrations, models


def link_labels_to_enrolment_consent(apps, schema_editor):
    """Labels given before this field existed were given under their enrolment's consent."""
    Annotation = apps.get_model("annotation", "Annotation")
    Enrolment = apps.get_model("annotation", "Enrolment")
    consents = {
        (project_id, annotator_id): consent_id
        for project_id, annotator_id, consent_id in Enrolment.objects.values_list(
            "project_id", "annotator_id", "consent_id"
        )
    }
    for (project_id, annotator_id), consent_id in consents.items():
        Annotation.objects.filter(
            project_id=project_id, annotator_id=annotator_id, consent__isnull=True
        ).update(consent_id=consent_id)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_takedown_controls_subject_consent_analysis"),
        ("provenance", "0004_seed_license_catalogue"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="consent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="provenance.consentrecord",
            ),
        ),
        migrations.RunPython(link_labels_to_enrolment_consent, migrations.RunPython.noop),
    ]
