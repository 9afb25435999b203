"""Assignment benchmark: latency of next-item + submit under concurrent annotators.

Runs against PostgreSQL only (SQLite serialises every writer, so its figures would say
nothing about production). Usage::

    CHORUS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:55499/chorus_bench \\
        .venv/bin/python bench/assignment.py --items 100000 --clients 32 --duration 20

What it does:

1. Migrates the database, then creates (or reuses, found by its marker title) an open
   text project with ``--items`` items and k = ``--k``. Items are written with
   ``bulk_create``, the fast path, not the import service: the benchmark is about
   assignment, and 100k rows through ingest would only slow the setup down.
2. Enrols ``--clients`` annotators (and one more for the baseline) through the services.
3. Reference, measured in the same run: one client alone does next + submit
   sequentially for ``--baseline-seconds``. There is no reference implementation of
   assignment to compare with, so the ratio printed is "concurrent p50 / single-client
   p50": how much latency concurrency adds, not a comparison with another system.
4. ``--clients`` clients, each with its own database connection, loop
   ``assignment_next`` + ``annotation_submit`` for ``--duration`` seconds and record
   the latency of each operation. Clients are threads of this process (``--mode
   threads``, the default) or separate processes (``--mode processes``).
5. Prints p50/p90/p99/max per operation, throughput, and checks correctness: no item
   with more than k labels that are not withdrawn, no duplicate (item, annotator), every
   submission stored, and ``slots_taken`` consistent with the rows.

Threads share one GIL, and most of an operation's time is Django ORM work in Python, so in
thread mode much of the measured latency is clients waiting for each other's CPU, not
the database. Process mode is closer to a deployment (one request per web worker
process). Either way the clients, the service code and PostgreSQL share this machine's
CPUs, so the figures depend on how many there are (printed at the top).
"""

import argparse
import hashlib
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER_TITLE = "Chorus assignment benchmark"
RESEARCHER = "bench-researcher"
ANNOTATOR_PREFIX = "bench-annotator-"
BASELINE_ANNOTATOR = "bench-annotator-solo"
BENCH_PASSWORD = "bench-not-a-login"  # noqa: S105 - throwaway accounts in a bench database
LABELS = ("hateful", "offensive", "neither")
# A reused project must still have this share of its slots open, or a new one is made.
MIN_OPEN_SLOT_SHARE = 0.5
PROCESS_START_TIMEOUT_S = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="Seconds of load.")
    parser.add_argument("--k", type=int, default=3, help="Annotations per item.")
    parser.add_argument(
        "--baseline-seconds", type=float, default=5.0, help="Seconds of single-client load."
    )
    parser.add_argument(
        "--mode",
        choices=("threads", "processes"),
        default="threads",
        help="Clients as threads of this process (default) or as separate processes, "
        "like web workers, which do not share one GIL.",
    )
    return parser.parse_args(argv)


def configure_database() -> str:
    """Point Django at the benchmark database; exit 2 unless it is PostgreSQL."""
    url = os.environ.get("CHORUS_BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        print(
            "bench/assignment.py needs PostgreSQL: set CHORUS_BENCH_DATABASE_URL (or "
            "DATABASE_URL) to a postgres:// URL of a throwaway database, e.g.\n"
            "  CHORUS_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:55499/chorus_bench "
            ".venv/bin/python bench/assignment.py\n"
            "See bench/README.md for starting a throwaway PostgreSQL.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    os.environ["DATABASE_URL"] = url
    # Keep each client's connection open for the whole run.
    os.environ.setdefault("CONN_MAX_AGE", "600")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    return url


@dataclass
class Samples:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    # Annotators told "no item left" (assignment_next returned None).
    exhausted: list[int] = field(default_factory=list)

    def extend(self, other: "Samples") -> None:
        self.next_ms += other.next_ms
        self.submit_ms += other.submit_ms
        self.total_ms += other.total_ms
        self.errors.update(other.errors)
        self.exhausted += other.exhausted


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_line(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<14} no samples"
    return (
        f"  {name:<14} n={len(values):>7}  p50={percentile(values, 0.5):7.2f}  "
        f"p90={percentile(values, 0.9):7.2f}  p99={percentile(values, 0.99):7.2f}  "
        f"max={max(values):8.2f}  mean={statistics.fmean(values):7.2f}  (ms)"
    )


def ensure_project(items: int, k: int) -> Any:
    from django.db.models import Count, Q

    from annotation.models import Item, Modality, Project, ProjectStatus
    from annotation.services import project_create, project_transition
    from core.db import table_statistics_refresh
    from core.models import Role, User

    researcher = User.objects.filter(username=RESEARCHER).first() or create_user(
        RESEARCHER, Role.RESEARCHER
    )
    title = f"{MARKER_TITLE} ({items} items, k={k})"
    for project in Project.objects.filter(title=title, status=ProjectStatus.OPEN):
        counts = Item.objects.filter(project=project).aggregate(
            total=Count("id"), open=Count("id", filter=Q(slots_taken__lt=k))
        )
        if counts["total"] == items and counts["open"] >= items * MIN_OPEN_SLOT_SHARE:
            print(f"Reusing project #{project.pk} ({counts['open']} items still open).")
            return project
    project = project_create(
        owner=researcher,
        preset="hate_speech",
        title=title,
        annotations_per_item=k,
        risk_disclosure="Benchmark data; no real texts.",
        data_use_statement="Benchmark only; nothing is published.",
    )
    started = time.perf_counter()
    rows = []
    for index in range(items):
        text = f"benchmark text {project.pk}-{index}"
        rows.append(
            Item(
                project=project,
                external_id=f"b{index:07d}",
                kind=Modality.TEXT,
                text=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                license="CC0-1.0",
            )
        )
    Item.objects.bulk_create(rows, batch_size=5000)
    table_statistics_refresh(Item)  # as the import service does after a large import
    print(
        f"Created project #{project.pk} with {items} items via bulk_create (fast path, not "
        f"the import service) in {time.perf_counter() - started:.1f} s."
    )
    project_transition(project=project, actor=researcher, status=ProjectStatus.OPEN)
    return project


def create_user(username: str, role: str) -> Any:
    from django.test import override_settings

    from core.services import user_create

    # Throwaway accounts nobody signs in with: the production hasher would spend ~0.3 s
    # per user for nothing.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        return user_create(username=username, password=BENCH_PASSWORD, role=role)


def ensure_annotators(project: Any, clients: int) -> tuple[list[Any], Any]:
    from annotation.services import enrolment_create
    from core.models import Role, User

    names = [f"{ANNOTATOR_PREFIX}{index:03d}" for index in range(1, clients + 1)]
    users = []
    for name in [*names, BASELINE_ANNOTATOR]:
        user = User.objects.filter(username=name).first() or create_user(name, Role.ANNOTATOR)
        enrolment_create(project=project, annotator=user)
        users.append(user)
    return users[:-1], users[-1]


def client_loop(
    project: Any, annotator: Any, seconds: float, start: threading.Barrier | None
) -> Samples:
    """next + submit until time is up or nothing is left for this annotator."""
    from django.db import connections

    from annotation.services import annotation_submit, assignment_next

    samples = Samples()
    label_index = annotator.pk
    try:
        if start is not None:
            start.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                assignment = assignment_next(project=project, annotator=annotator)
            except Exception as error:  # noqa: BLE001 - counted and reported, run goes on
                samples.errors[f"next: {type(error).__name__}: {error}"[:160]] += 1
                continue
            t1 = time.perf_counter()
            if assignment is None:
                samples.exhausted.append(annotator.pk)
                break
            label_index += 1
            try:
                annotation_submit(
                    annotator=annotator,
                    item=assignment.item,
                    value=LABELS[label_index % len(LABELS)],
                    time_spent_ms=1000,
                )
            except Exception as error:  # noqa: BLE001 - counted and reported, run goes on
                samples.errors[f"submit: {type(error).__name__}: {error}"[:160]] += 1
                continue
            t2 = time.perf_counter()
            samples.next_ms.append((t1 - t0) * 1000)
            samples.submit_ms.append((t2 - t1) * 1000)
            samples.total_ms.append((t2 - t0) * 1000)
    finally:
        connections.close_all()
    return samples


def _process_client(
    project_id: int,
    annotator_id: int,
    seconds: float,
    start: Any,
    results: Any,
) -> None:
    """One client in its own process: its own interpreter, GIL and connection."""
    configure_database()
    from annotation.models import Project
    from core.models import User

    project = Project.objects.get(pk=project_id)
    annotator = User.objects.get(pk=annotator_id)
    samples = client_loop(project, annotator, seconds, start)
    results.put(samples)


def run_processes(project: Any, annotators: list[Any], seconds: float) -> tuple[Samples, float]:
    # spawn, not fork: a forked child would share the parent's database socket.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(annotators) + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=_process_client, args=(project.pk, annotator.pk, seconds, start, results)
        )
        for annotator in annotators
    ]
    for process in processes:
        process.start()
    start.wait(timeout=PROCESS_START_TIMEOUT_S)
    began = time.perf_counter()
    merged = Samples()
    for _ in processes:
        merged.extend(results.get(timeout=seconds + PROCESS_START_TIMEOUT_S))
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    return merged, elapsed


def run_threads(project: Any, annotators: list[Any], seconds: float) -> tuple[Samples, float]:
    results: list[Samples] = []
    lock = threading.Lock()
    start = threading.Barrier(len(annotators) + 1)

    def worker(annotator: Any) -> None:
        samples = client_loop(project, annotator, seconds, start)
        with lock:
            results.append(samples)

    threads = [threading.Thread(target=worker, args=(a,), daemon=True) for a in annotators]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = Samples()
    for samples in results:
        merged.extend(samples)
    return merged, elapsed


@dataclass
class Check:
    ok: bool
    lines: list[str]


def check_correctness(project: Any, submitted: int, before: int, exhausted: list[int]) -> Check:
    from django.db.models import Count, Exists, F, OuterRef, Q

    from annotation.models import Annotation, Assignment, Item

    k = project.annotations_per_item
    over_full = (
        Annotation.objects.filter(project=project, withdrawn=False)
        .values("item")
        .annotate(n=Count("id"))
        .filter(n__gt=k)
        .count()
    )
    duplicates = (
        Annotation.objects.filter(project=project)
        .values("item", "annotator")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    stored = Annotation.objects.filter(project=project).count() - before
    # slots_taken must equal open assignments + labels not withdrawn, item by item.
    mismatched = (
        Item.objects.filter(project=project)
        .annotate(
            open_assignments=Count(
                "assignments", filter=Q(assignments__status=Assignment.Status.OPEN), distinct=True
            ),
            labels=Count("annotations", filter=Q(annotations__withdrawn=False), distinct=True),
        )
        .exclude(slots_taken=F("open_assignments") + F("labels"))
        .count()
    )
    # Nothing frees a slot during the run (no skip, withdrawal or expiry), so an item with
    # room now had room when an annotator was told none was left.
    falsely_exhausted = 0
    for annotator_id in exhausted:
        seen = Assignment.objects.filter(item=OuterRef("pk"), annotator_id=annotator_id).exclude(
            status=Assignment.Status.EXPIRED
        )
        open_to_them = Item.objects.filter(project=project, slots_taken__lt=k).filter(~Exists(seen))
        falsely_exhausted += open_to_them.exists()
    lines = [
        f"  items with more than k={k} labels: {over_full}",
        f"  duplicate (item, annotator) labels: {duplicates}",
        f"  submissions acknowledged {submitted}, new rows stored {stored}",
        f"  items whose slots_taken != open assignments + labels: {mismatched}",
        f"  clients told no item is left while items were still open to them: "
        f"{falsely_exhausted} of {len(exhausted)}",
    ]
    ok = (over_full, duplicates, mismatched, falsely_exhausted) == (0, 0, 0, 0)
    ok = ok and stored == submitted
    return Check(ok, lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.items < 1 or args.clients < 1 or args.k < 1 or args.duration <= 0:
        print("--items, --clients, --k and --duration must be positive.", file=sys.stderr)
        return 2
    url = configure_database()
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Annotation

    call_command("migrate", verbosity=0, interactive=False)
    server = connection.cursor().connection.info.server_version
    print(
        f"Chorus assignment benchmark on PostgreSQL {server // 10000}.{server % 10000} "
        f"({url.rsplit('@', 1)[-1]}), {os.cpu_count()} CPUs on this machine"
    )
    print(
        f"items={args.items} k={args.k} clients={args.clients} duration={args.duration:g}s "
        f"baseline={args.baseline_seconds:g}s"
    )
    project = ensure_project(args.items, args.k)
    annotators, solo = ensure_annotators(project, args.clients)
    before = Annotation.objects.filter(project=project).count()
    connection.close()

    print(f"\nReference: 1 client, sequential next + submit for {args.baseline_seconds:g} s")
    baseline = client_loop(project, solo, args.baseline_seconds, None)
    for name, values in (("next", baseline.next_ms), ("submit", baseline.submit_ms)):
        print(summary_line(name, values))
    print(summary_line("next+submit", baseline.total_ms))
    print(f"  throughput     {len(baseline.total_ms) / args.baseline_seconds:8.1f} ops/s")

    kind = "threads of this process" if args.mode == "threads" else "separate processes"
    print(f"\nConcurrent: {args.clients} clients ({kind}, one connection each)")
    run = run_threads if args.mode == "threads" else run_processes
    concurrent, elapsed = run(project, annotators, args.duration)
    print(summary_line("next", concurrent.next_ms))
    print(summary_line("submit", concurrent.submit_ms))
    print(summary_line("next+submit", concurrent.total_ms))
    throughput = len(concurrent.total_ms) / elapsed
    print(f"  throughput     {throughput:8.1f} next+submit/s over {elapsed:.1f} s")
    if concurrent.exhausted:
        print(f"  clients told no item is left: {len(concurrent.exhausted)}")
    if baseline.total_ms and concurrent.total_ms:
        ratio = percentile(concurrent.total_ms, 0.5) / percentile(baseline.total_ms, 0.5)
        print(
            f"  ratio: concurrent p50 / single-client p50 (next+submit) = {ratio:.2f}x "
            "(reference = the same code with one client, measured above; no other "
            "implementation is compared)"
        )
    errors = baseline.errors + concurrent.errors
    print(f"  errors: {sum(errors.values())}")
    for message, count in errors.most_common(10):
        print(f"    {count} x {message}")

    submitted = len(baseline.total_ms) + len(concurrent.total_ms)
    exhausted = baseline.exhausted + concurrent.exhausted
    check = check_correctness(project, submitted, before, exhausted)
    print(f"\nCorrectness: {'OK' if check.ok else 'FAILED'}")
    for line in check.lines:
        print(line)
    connection.close()
    return 0 if check.ok and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
