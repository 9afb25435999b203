"""Give every existing source its owner (schema in 0005_source_owner).

Each source goes to the owner of the project whose items used it first. A source used by
several researchers' projects is split: every further owner gets a copy that keeps the
shared row's details, except the URL, which comes back from that owner's own items (the
import keeps each row's ``source_url`` in the item's metadata), and their items move to
it. A source no item uses keeps no owner; imports never match such a row.

Reversing merges same-named sources back into the oldest row, so that ``name`` can be
unique again; the URLs of the merged copies are then lost, as they were before.
Schema changes are the migrations either side: PostgreSQL refuses to alter a table whose
rows were changed earlier in the same transaction (deferred foreign-key checks pending).
"""

from django.db import migrations
from django.db.models import Count, Min


def _own_url(items, fallback):
    """The source URL the owner's first imported row gave, else the shared row's."""
    url = (
        items.filter(metadata__has_key="source_url")
        .order_by("pk")
        .values_list("metadata__source_url", flat=True)
        .first()
    )
    return url if isinstance(url, str) and url else fallback


def assign_owners(apps, schema_editor):
    Source = apps.get_model("provenance", "Source")
    Item = apps.get_model("annotation", "Item")
    for source in list(Source.objects.filter(owner__isnull=True).order_by("pk")):
        owners = [
            row["project__owner"]
            for row in Item.objects.filter(source=source)
            .values("project__owner")
            .annotate(first_item=Min("pk"))
            .order_by("first_item")
        ]
        if not owners:
            continue
        first, *others = owners
        source.owner_id = first
        source.save(update_fields=["owner"])
        for owner_id in others:
            items = Item.objects.filter(source=source, project__owner_id=owner_id)
            copy = Source.objects.create(
                owner_id=owner_id,
                name=source.name,
                url=_own_url(items, source.url),
                creator=source.creator,
                collection_method=source.collection_method,
                collected_on=source.collected_on,
                terms=source.terms,
            )
            items.update(source=copy)


def merge_by_name(apps, schema_editor):
    Source = apps.get_model("provenance", "Source")
    Item = apps.get_model("annotation", "Item")
    names = (
        Source.objects.values("name")
        .annotate(kept=Min("pk"), count=Count("pk"))
        .filter(count__gt=1)
    )
    for row in list(names):
        copies = Source.objects.filter(name=row["name"]).exclude(pk=row["kept"])
        Item.objects.filter(source__in=copies).update(source_id=row["kept"])
        copies.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("provenance", "0005_source_owner"),
        # Items and their projects' owners say whose each source is.
        ("annotation", "0002_initial"),
    ]

    operations = [
        migrations.RunPython(assign_owners, merge_by_name),
    ]
