"""Dataset export benchmark: build a Parquet-only version of a large project on PostgreSQL.

Usage (``make bench-export`` starts a throwaway PostgreSQL unless a URL is given)::

    CHORUS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:55499/chorus_bench \\
        .venv/bin/python bench/export.py --items 1000000 --labels-per-item 5

What it does:

1. Migrates the database and creates (or reuses, found by its marker title) an open text
   project with ``--items`` items and ``--labels-per-item`` labels each, written by
   ``INSERT ... SELECT generate_series`` on the server (the services' per-label path
   would take hours for 5M labels, and the benchmark is about the export).
2. Reference, measured in the same run: ``COPY (SELECT <the columns the build reads>
   FROM the annotation table ...) TO STDOUT``, the physical limit of reading the labels.
3. The build's own read of the labels (``ml.build.collect``) alone, for the ratio
   against the COPY.
4. A whole build (``dataset_version_build_now``, Parquet only, the default recipe): its
   wall time, the time of each phase (read, aggregate, near-duplicates, split, write,
   upload, publish: recorded by the build in ``counts["build_seconds"]``) and the peak
   memory of this process (``ru_maxrss``).

Prints the figures and the ratios against the targets: < 60 s and < 2 GB for the build,
the label read within 2x of the COPY.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER_TITLE = "Chorus export benchmark"
TARGET_BUILD_S = 60.0
TARGET_MEMORY_GB = 2.0
TARGET_READ_RATIO = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labels-per-item", type=int, default=5)
    return parser.parse_args(argv)


def configure() -> None:
    url = os.environ.get("CHORUS_BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.stderr.write(
            "bench/export.py needs PostgreSQL: set CHORUS_BENCH_DATABASE_URL (or DATABASE_URL)"
            " to a postgres:// URL of a throwaway database, or run `make bench-export`.\n"
        )
        raise SystemExit(2)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def ensure_project(items: int, labels_per_item: int) -> Any:
    from django.db import connection, transaction

    from annotation.models import Annotation, Enrolment, Item, Project, ProjectStatus
    from annotation.services import enrolment_create, project_create, project_transition
    from core.models import Role, User

    project = Project.objects.filter(title=MARKER_TITLE).order_by("-pk").first()
    if project is not None:
        have = Item.objects.filter(project=project).count()
        labels = Annotation.objects.filter(project=project).count()
        if have == items and labels == items * labels_per_item:
            print(f"reusing project {project.pk}: {have:,} items, {labels:,} labels")
            return project
    started = time.perf_counter()
    owner, _ = User.objects.get_or_create(
        username="bench-export-researcher", defaults={"role": Role.RESEARCHER}
    )
    project = project_create(
        owner=owner,
        preset="hate_speech",
        title=MARKER_TITLE,
        risk_disclosure="Benchmark texts.",
        data_use_statement="Benchmark only.",
        annotations_per_item=labels_per_item,
    )
    with connection.cursor() as cursor:
        # Texts of eight pseudo-random words: distinct, as real texts are (templated texts
        # would all be near-duplicates of each other).
        cursor.execute(
            """
            INSERT INTO annotation_item (
                created_at, updated_at, project_id, external_id, kind, text, image,
                removed_metadata, metadata, sha256, phash, creator, license, attribution,
                subject_consent, control, label_entropy, slots_taken, shuffle_key
            )
            SELECT now(), now(), %s, 'x' || g, 'text',
                   'word' || (hashint4(g) %% 9973) || ' word' || (hashint4(g + 1) %% 9973)
                   || ' word' || (hashint4(g + 2) %% 9973) || ' word' || (hashint4(g + 3) %% 9973)
                   || ' word' || (hashint4(g + 4) %% 9973) || ' word' || (hashint4(g + 5) %% 9973)
                   || ' ' || md5(g::text),
                   '', '[]', '{}', encode(sha256(g::text::bytea), 'hex'), '', '', 'CC-BY-4.0',
                   '', 'not_applicable', '', 0, %s, random()
            FROM generate_series(1, %s) AS g
            """,
            [project.pk, labels_per_item, items],
        )
    project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    annotators = []
    for number in range(labels_per_item):
        user, _ = User.objects.get_or_create(
            username=f"bench-export-annotator-{number}", defaults={"role": Role.ANNOTATOR}
        )
        if not Enrolment.objects.filter(project=project, annotator=user).exists():
            enrolment_create(project=project, annotator=user)
        annotators.append(user.pk)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotation_annotation (
                created_at, updated_at, project_id, item_id, annotator_id, value, confidence,
                rationale, time_spent_ms, withdrawn
            )
            SELECT now(), now(), %s, i.id, a.annotator,
                   to_jsonb((ARRAY['hateful', 'offensive', 'neither'])[
                       1 + abs(hashint8(i.id * 7 + a.annotator)) %% 3]),
                   1 + abs(hashint8(i.id + a.annotator)) %% 5, '',
                   1000 + abs(hashint8(i.id - a.annotator)) %% 9000, false
            FROM annotation_item AS i CROSS JOIN unnest(%s::bigint[]) AS a(annotator)
            WHERE i.project_id = %s
            """,
            [project.pk, annotators, project.pk],
        )
        cursor.execute("ANALYZE annotation_item")
        cursor.execute("ANALYZE annotation_annotation")
    print(
        f"created project {project.pk}: {items:,} items, {items * labels_per_item:,} labels "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return project


def copy_reference(project: Any) -> tuple[float, int]:
    """Seconds and bytes of COPY ... TO STDOUT of the label columns the build reads."""
    from django.db import connection

    started = time.perf_counter()
    size = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY (SELECT item_id, annotator_id, value, confidence, time_spent_ms "
            "FROM annotation_annotation WHERE project_id = %s AND NOT withdrawn "
            "ORDER BY item_id, annotator_id) TO STDOUT",
            [project.pk],
        ) as copy:
            for block in copy:
                size += len(block)
    return time.perf_counter() - started, size


def build_read(project: Any) -> float:
    from ml.build.collect import _annotations

    started = time.perf_counter()
    frame = _annotations(project, lambda rows: None)
    elapsed = time.perf_counter() - started
    del frame
    return elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure()
    print(f"CPUs: {os.cpu_count()}, items {args.items:,}, labels/item {args.labels_per_item}")
    project = ensure_project(args.items, args.labels_per_item)

    copy_s, copy_bytes = copy_reference(project)
    print(f"reference COPY of the labels: {copy_s:.2f} s ({copy_bytes / 1e6:.0f} MB)")
    read_s = build_read(project)
    print(
        f"build's read of the labels:   {read_s:.2f} s  ratio {read_s / copy_s:.2f}x COPY "
        f"(target <= {TARGET_READ_RATIO:.0f}x)"
    )

    from ml.models import DatasetVersion
    from ml.services import dataset_version_build_now

    recipe: dict[str, Any] = {}
    started = time.perf_counter()
    version = dataset_version_build_now(project=project, actor=project.owner, recipe=recipe)
    build_s = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    if version.status != DatasetVersion.Status.DONE:
        print(f"build failed: {version.error}")
        return 1
    phases = version.counts.get("build_seconds", {})
    print(
        f"build {version.label}: {build_s:.1f} s (target < {TARGET_BUILD_S:.0f} s, "
        f"ratio {build_s / TARGET_BUILD_S:.2f}); peak memory {peak_gb:.2f} GB "
        f"(target < {TARGET_MEMORY_GB:.0f} GB)"
    )
    order = ("read", "aggregate", "near_duplicates", "split", "write", "upload", "publish")
    for phase in order:
        print(f"  {phase:<16} {phases.get(phase, 0.0):8.2f} s")
    sizes = version.counts["items"]
    print(f"  splits: {sizes}; files: {len(version.manifest['files'])}")
    ok = build_s < TARGET_BUILD_S and peak_gb < TARGET_MEMORY_GB and read_s <= 2 * copy_s
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
