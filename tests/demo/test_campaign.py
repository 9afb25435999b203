"""``manage.py create_demo`` and the campaign it builds."""

import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from PIL import ExifTags, Image

from annotation.analysis import analysis_get
from annotation.models import (
    AgreementAnalysis,
    Annotation,
    Assignment,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
    TakedownRequest,
)
from annotation.selectors import annotations_for_analysis
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.models import User
from demo.campaign import (
    DEMO_PASSWORD,
    DEMO_URL,
    IMAGE_PROJECT_TITLE,
    TEXT_PROJECT_TITLE,
    DemoOptions,
)
from provenance.models import AuditEvent
from provenance.services import audit_chain_verify

SMALL_DEMO = {"annotators": 6, "images": 6, "texts": 10, "seed": 1}


@pytest.fixture
def fast_passwords(settings) -> None:
    # The demo hashes one password per user; the default hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_demo(**options: object) -> str:
    out = io.StringIO()
    call_command("create_demo", stdout=out, **{**SMALL_DEMO, **options})
    return out.getvalue()


def _demo_projects() -> dict[str, Project]:
    projects = Project.objects.filter(title__in=(IMAGE_PROJECT_TITLE, TEXT_PROJECT_TITLE))
    return {project.modality: project for project in projects}


def _could_still_label(item: Item, project: Project) -> bool:
    """Whether an active enrolled annotator has neither labeled nor skipped this item."""
    active = Enrolment.objects.filter(project=project, withdrawn_at__isnull=True).values_list(
        "annotator_id", flat=True
    )
    seen = set(
        Assignment.objects.filter(item=item)
        .exclude(status=Assignment.Status.EXPIRED)
        .values_list("annotator_id", flat=True)
    )
    return any(annotator_id not in seen for annotator_id in active)


@pytest.mark.django_db
def test_create_demo_small_run_builds_labeled_projects_and_prints_logins(fast_passwords):
    output = run_demo()

    projects = _demo_projects()
    assert set(projects) == {"image", "text"}
    assert all(project.status == ProjectStatus.OPEN for project in projects.values())
    sizes = DemoOptions(images=6, texts=10)
    assert projects["image"].items.count() == 6 + sizes.late_images
    assert projects["text"].items.count() == 10 + sizes.late_texts
    for project in projects.values():
        k = project.annotations_per_item
        labels = Counter(
            annotations_for_analysis(project=project).values_list("item_id", flat=True)
        )
        for item in project.items.select_related("import_batch"):
            assert item.import_batch is not None
            if item.control or item.tombstoned_at:
                # Control items take no slots; a taken-down item leaves the pool.
                continue
            if "-late." in item.import_batch.original_name:
                # Imported after the crowd finished: left for a person trying the demo.
                assert labels[item.pk] == 0 and _could_still_label(item, project)
            else:
                assert labels[item.pk] <= k
                assert labels[item.pk] == k or not _could_still_label(item, project)
    assert Item.objects.filter(project__in=projects.values()).exclude(control="").exists()
    assert Item.objects.filter(tombstoned_at__isnull=False).count() <= 1
    assert TakedownRequest.objects.filter(status=TakedownRequest.Status.OPEN).count() >= 1
    assert AgreementAnalysis.objects.filter(project__in=projects.values()).count() == 2
    assert "Krippendorff's alpha" in output
    for login in ("researcher", "auditor", "admin", "annotator01", "annotator06"):
        assert login in output
    assert DEMO_PASSWORD in output
    assert DEMO_URL in output
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.check_password(DEMO_PASSWORD)


@pytest.mark.django_db
def test_create_demo_analyses_fresh_with_their_plots_stored(fast_passwords):
    """The researcher's first look at the analysis pages only reads: the demo computed them."""
    run_demo()

    for project in _demo_projects().values():
        read = analysis_get(project=project, filters={}, with_figures=True)
        assert read.analysis is not None and not read.stale and not read.needs_refresh
        assert read.analysis.figures["entropy"].startswith("<svg")
        assert read.analysis.figures["groups"]


@pytest.mark.django_db
def test_create_demo_images_stored_without_exif_gps_or_xmp(fast_passwords):
    run_demo()

    items = list(_demo_projects()["image"].items.all())
    assert any("gps" in item.removed_metadata for item in items)
    assert any("xmp" in item.removed_metadata for item in items)
    for item in items:
        with item.image.open("rb") as handle, Image.open(handle) as stored:
            exif = stored.getexif()
            assert len(exif) == 0
            assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
            assert "exif" not in stored.info and "xmp" not in stored.info
            assert not any("xmp" in key.lower() for key in getattr(stored, "text", {}))


@pytest.mark.django_db
def test_create_demo_survey_withdrawal_and_audit_chain_recorded(fast_passwords):
    run_demo()

    projects = _demo_projects()
    questions = {question["key"]: question for question in DEFAULT_SURVEY}
    answered = Enrolment.objects.filter(project__in=projects.values()).exclude(survey_answers={})
    assert answered.exists()
    for enrolment in answered:
        for key, value in enrolment.survey_answers.items():
            assert value in (*questions[key]["options"], PREFER_NOT_TO_SAY)

    withdrawn = Enrolment.objects.filter(project__in=projects.values(), withdrawn_at__isnull=False)
    assert withdrawn.exists()
    for enrolment in withdrawn:
        own = Annotation.objects.filter(project=enrolment.project, annotator=enrolment.annotator)
        assert own.exists() and not own.filter(withdrawn=False).exists()
        assert (
            not annotations_for_analysis(project=enrolment.project)
            .filter(annotator=enrolment.annotator)
            .exists()
        )
    assert AuditEvent.objects.filter(action="enrolment.withdraw").count() == withdrawn.count()
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_create_demo_second_run_reprints_logins_and_changes_nothing(fast_passwords):
    run_demo()
    before = (Item.objects.count(), Annotation.objects.count(), AuditEvent.objects.count())

    output = run_demo()

    assert "already set up" in output and "annotator01" in output
    assert (Item.objects.count(), Annotation.objects.count(), AuditEvent.objects.count()) == before


@pytest.mark.django_db
def test_create_demo_reset_on_sqlite_rebuilds_from_scratch(fast_passwords):
    if connection.vendor != "sqlite":
        pytest.skip("--reset flushes only the embedded SQLite database")
    run_demo()
    first_files = [item.image.name for item in _demo_projects()["image"].items.all()]

    run_demo(reset=True, images=3)

    assert _demo_projects()["image"].items.count() == 3 + DemoOptions(images=3).late_images
    assert Project.objects.count() == 2
    assert audit_chain_verify().ok
    storage = Item._meta.get_field("image").storage
    assert not any(storage.exists(name) for name in first_files)


@pytest.mark.postgres
@pytest.mark.django_db
def test_create_demo_reset_on_postgres_refuses_and_keeps_data(fast_passwords):
    run_demo()
    before = Annotation.objects.count()

    with pytest.raises(CommandError, match="SQLite"):
        run_demo(reset=True)

    assert Annotation.objects.count() == before


@pytest.mark.django_db
def test_create_demo_existing_demo_username_without_demo_refuses(fast_passwords):
    User.objects.create_user(username="researcher", password="x" * 12, role="researcher")

    with pytest.raises(CommandError, match="researcher"):
        run_demo()

    assert not Project.objects.exists()


def test_create_demo_invalid_sizes_refused():
    with pytest.raises(CommandError, match="annotators"):
        call_command("create_demo", annotators=1, stdout=io.StringIO())
