"""Sources belong to their owner: the same name under two researchers is two sources."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotation.ingest import items_import, read_upload
from annotation.models import Item, Project
from core.errors import ValidationFailed
from core.models import Role
from provenance.models import Source
from provenance.services import source_get_or_create
from tests.annotation.factories import make_project
from tests.core.factories import make_user

BEFORE_OWNERS = ("provenance", "0004_seed_license_catalogue")


@pytest.mark.django_db
def test_source_get_or_create_same_name_two_owners_two_sources_with_own_urls():
    first, second = make_user(Role.RESEARCHER), make_user(Role.RESEARCHER)

    mine = source_get_or_create(owner=first, name="City Archive", url="https://a.example/")
    theirs = source_get_or_create(owner=second, name="City Archive", url="https://b.example/")

    assert mine.pk != theirs.pk
    assert (mine.owner, mine.url) == (first, "https://a.example/")
    assert (theirs.owner, theirs.url) == (second, "https://b.example/")


@pytest.mark.django_db
def test_source_get_or_create_same_owner_again_keeps_the_first_url():
    owner = make_user(Role.RESEARCHER)
    first = source_get_or_create(owner=owner, name="City Archive", url="https://a.example/")

    again = source_get_or_create(owner=owner, name="City Archive", url="https://other.example/")

    assert again.pk == first.pk and again.url == "https://a.example/"
    assert Source.objects.count() == 1


@pytest.mark.django_db
def test_source_get_or_create_unowned_legacy_source_never_matched():
    legacy = Source.objects.create(name="City Archive", url="https://legacy.example/")
    owner = make_user(Role.RESEARCHER)

    source = source_get_or_create(owner=owner, name="City Archive", url="https://a.example/")

    assert source.pk != legacy.pk and source.owner == owner


@pytest.mark.django_db
def test_source_get_or_create_invalid_url_refused_and_nothing_stored():
    with pytest.raises(ValidationFailed) as caught:
        source_get_or_create(owner=make_user(Role.RESEARCHER), name="X", url="not a url")

    assert caught.value.code == "invalid_source"
    assert not Source.objects.exists()


# ---------------------------------------------------------------- migration


def _migrate(target: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(target or executor.loader.graph.leaf_nodes())


def _import(project: Project, external_id: str, url: str) -> None:
    data = "external_id,text,license,source,source_url\n"
    data += f"{external_id},text {external_id},CC0-1.0,City Archive,{url}\n"
    items_import(
        project=project,
        actor=project.owner,
        source=read_upload(data=data.encode(), filename="items.csv"),
    )


@pytest.mark.django_db(transaction=True)
def test_source_owner_migration_splits_a_shared_source_by_project_owner_and_reverses():
    first, second = make_project(preset="hate_speech"), make_project(preset="hate_speech")
    _import(first, "a1", "https://a.example/")
    _import(second, "b1", "https://b.example/")
    unused = Source.objects.create(name="Never used")
    try:
        # Back to one source per name: the shared row the first writer created.
        _migrate([BEFORE_OWNERS])
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT source_id FROM annotation_item")
            assert len(cursor.fetchall()) == 1
    finally:
        _migrate()

    a1, b1 = Item.objects.select_related("source").order_by("external_id")
    assert a1.source is not None and b1.source is not None
    assert (a1.source.owner_id, a1.source.url) == (first.owner_id, "https://a.example/")
    assert (b1.source.owner_id, b1.source.url) == (second.owner_id, "https://b.example/")
    assert a1.source.name == b1.source.name == "City Archive"
    assert Source.objects.get(pk=unused.pk).owner is None
