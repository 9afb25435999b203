"""Fixtures for dataset versions: a labelled text project with distinct texts, media in a
temporary folder."""

from pathlib import Path

import pytest

from annotation.models import Item
from ml.models import DatasetVersion
from ml.services import dataset_version_build_now
from tests.annotation.analysis_data import Labelled, make_labelled_project

# Distinct sentences: the factory's "sample text number N" are near-duplicates of each other.
SENTENCES = (
    "The river flooded the old mill after three days of rain.",
    "Nobody expected the orchestra to play a punk song at the gala.",
    "A fox crossed the motorway at dawn and vanished into the wheat.",
    "Her grandmother kept every letter in a biscuit tin under the stairs.",
    "The committee postponed the vote until the budget was published.",
    "Children built a snow fort that lasted well into March.",
    "The bakery on the corner sells rye bread only on Thursdays.",
    "An astronomer counted forty meteors before the clouds rolled in.",
    "The ferry was cancelled because the harbour wall had cracked.",
    "He learned to juggle from videos recorded by a retired clown.",
    "Volunteers planted two hundred oak saplings along the canal.",
    "The museum returned the mask to the village it was taken from.",
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def distinct_texts(labelled: Labelled) -> Labelled:
    for item, sentence in zip(
        Item.objects.filter(project=labelled.project).order_by("pk"), SENTENCES, strict=False
    ):
        Item.objects.filter(pk=item.pk).update(text=sentence)
    return labelled


def grouped_project() -> Labelled:
    """Twelve distinct texts with metadata to group by (gender, region), labelled by four
    annotators who answered the survey's age question."""
    labelled = distinct_texts(make_labelled_project(n_items=len(SENTENCES), n_annotators=4))
    for position, item in enumerate(Item.objects.filter(project=labelled.project).order_by("pk")):
        Item.objects.filter(pk=item.pk).update(
            metadata={
                "gender": "F" if position % 2 else "M",
                "region": "north" if position < len(SENTENCES) // 2 else "south",
            }
        )
    return labelled


@pytest.fixture
def labelled(db) -> Labelled:
    return distinct_texts(make_labelled_project(n_items=10, n_annotators=4))


def build_version(labelled: Labelled, recipe: dict[str, object] | None = None) -> DatasetVersion:
    """Build a version here and now by ``recipe``, as its owner; it must succeed."""
    project = labelled.project
    version = dataset_version_build_now(project=project, actor=project.owner, recipe=recipe or {})
    assert version.status == "done", version.error
    return version


def image_project(n_items: int = 16) -> Labelled:
    """An open photo-privacy project with ``n_items`` small distinct pictures (no people
    shown), labelled by four annotators: dark pictures mostly 'private', light ones
    'public', with the metadata key ``tone`` to group by."""
    import hashlib
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    from annotation.models import Modality, ProjectStatus, SubjectConsent
    from annotation.services import project_transition
    from tests.annotation.analysis_data import PRIVACY, label_everything
    from tests.annotation.factories import make_enrolled_annotator, make_project

    project = make_project(preset="privacy_alert", k=4)
    for index in range(n_items):
        dark = index % 2 == 0
        shade = 30 + index if dark else 200 + index
        out = io.BytesIO()
        Image.new("RGB", (24, 24), (shade, shade // 2, 255 - shade)).save(out, "PNG")
        content = out.getvalue()
        sha = hashlib.sha256(content).hexdigest()
        item = Item(
            project=project,
            external_id=f"p{index}",
            kind=Modality.IMAGE,
            sha256=sha,
            license="CC0-1.0",
            subject_consent=SubjectConsent.NOT_APPLICABLE,
            metadata={"tone": "dark" if dark else "light"},
        )
        item.image.save(f"{sha}.png", ContentFile(content), save=False)
        item.save()
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotators = [make_enrolled_annotator(project) for _ in range(4)]
    label_everything(
        project,
        annotators,
        lambda annotator, item: PRIVACY[1] if item % 2 == 0 or annotator == 3 else PRIVACY[2],
    )
    return Labelled(project, annotators)
