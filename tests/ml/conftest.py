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


@pytest.fixture
def labelled(db) -> Labelled:
    return distinct_texts(make_labelled_project(n_items=10, n_annotators=4))


def build_version(labelled: Labelled, recipe: dict[str, object] | None = None) -> DatasetVersion:
    """Build a version here and now by ``recipe``, as its owner; it must succeed."""
    project = labelled.project
    version = dataset_version_build_now(project=project, actor=project.owner, recipe=recipe or {})
    assert version.status == "done", version.error
    return version
