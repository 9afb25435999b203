"""Reads for the annotation campaign. Visibility is decided here, for lists and details.

Researchers see their own projects; auditors and staff see all projects read-only;
annotators see open projects (and ones they joined), their own assignments and labels,
never anyone else's.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    Annotation,
    Assignment,
    ControlKind,
    Enrolment,
    ImportBatch,
    Item,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from core.errors import NotFound
from core.models import User
from provenance.licenses import (
    INTENDED_USES,
    UNSPECIFIED,
    USES,
    Blocker,
    LicenseClass,
    check_use,
    unclassified_ids,
)
from provenance.licenses import classify as license_classify
from provenance.selectors import license_table


def project_list_for(*, user: User) -> QuerySet[Project]:
    queryset = Project.objects.select_related("owner")
    if user.is_staff or user.is_auditor:
        return queryset.all()
    if user.is_researcher:
        return queryset.managed_by(user)
    joined = Enrolment.objects.filter(project=OuterRef("pk"), annotator=user)
    return queryset.filter(Q(status=ProjectStatus.OPEN) | Exists(joined))


def project_get_for(*, user: User, project_id: int) -> Project:
    project = project_list_for(user=user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_managed_by(*, user: User, project_id: int) -> Project:
    """A project this user may change (``Project.is_managed_by``). 404 otherwise (no
    existence leak)."""
    project = Project.objects.managed_by(user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_readable_by_staff_role(*, user: User, project_id: int) -> Project:
    """A project whose items and labels this user may read: whoever manages it, or an
    auditor."""
    queryset = Project.objects.all() if user.is_auditor else Project.objects.managed_by(user)
    project = queryset.filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


ITEM_ORDERING_FIELDS = ("id", "external_id", "created_at", "slots_taken")


def item_list(*, project: Project, ordering: str | None = None) -> QuerySet[Item]:
    queryset = Item.objects.filter(project=project).select_related("source")
    if ordering and ordering.lstrip("-") in ITEM_ORDERING_FIELDS:
        return queryset.order_by(ordering)
    return queryset.order_by("id")


def item_get_for(*, user: User, item_id: int) -> Item:
    """An item this user may see: researcher owner, auditor, staff, or its annotator."""
    item = Item.objects.select_related("project", "source").filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such item.")
    project = item.project
    if user.is_auditor or project.is_managed_by(user):
        return item
    if user.is_annotator and (
        Assignment.objects.filter(item=item, annotator=user)
        .exclude(status=Assignment.Status.CANCELLED)
        .exists()
    ):
        return item
    raise NotFound("No such item.")


def annotation_list_for(*, user: User, project: Project) -> QuerySet[Annotation]:
    """Researchers and auditors: every label not withdrawn. Annotators: their own only."""
    queryset = Annotation.objects.filter(project=project).select_related("annotator", "item")
    if user.is_annotator and not user.is_staff:
        return queryset.filter(annotator=user).order_by("id")
    return queryset.filter(withdrawn=False).order_by("id")


def annotation_get_own(*, user: User, annotation_id: int) -> Annotation:
    annotation = (
        Annotation.objects.select_related("project", "item")
        .filter(pk=annotation_id, annotator=user)
        .first()
    )
    if annotation is None:
        raise NotFound("No such annotation.")
    return annotation


def annotations_for_analysis(*, project: Project) -> QuerySet[Annotation]:
    """The labels every analysis and export uses: withdrawn ones are never included."""
    return Annotation.objects.filter(project=project, withdrawn=False)


def assignment_get_own(*, user: User, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("item", "project")
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


def assignment_current(*, project: Project, annotator: User) -> Assignment | None:
    """The item this annotator holds right now (open, not expired), without claiming one."""
    return (
        Assignment.objects.filter(
            project=project,
            annotator=annotator,
            status=Assignment.Status.OPEN,
            expires_at__gt=timezone.now(),
        )
        .select_related("item")
        .first()
    )


def assignment_list_own(*, user: User, project: Project) -> QuerySet[Assignment]:
    return Assignment.objects.filter(project=project, annotator=user).order_by("-created_at")


def enrolment_get(*, project: Project, annotator: User) -> Enrolment | None:
    return Enrolment.objects.filter(project=project, annotator=annotator).first()


def enrolment_active_count(*, project: Project) -> int:
    """Annotators enrolled and not withdrawn: those a change of terms asks to consent again."""
    return Enrolment.objects.filter(project=project, withdrawn_at__isnull=True).count()


def import_batch_list(*, project: Project) -> QuerySet[ImportBatch]:
    return (
        ImportBatch.objects.filter(project=project)
        .select_related("created_by")
        .order_by("-created_at")
    )


def _count_per(queryset: QuerySet[Any], *, outer: str) -> Coalesce:
    """The number of rows of ``queryset``, correlated to the outer row through ``outer`` (a
    field filtered on an ``OuterRef``), as a subquery: 0, not NULL, when there are none."""
    counted = queryset.order_by().values(outer).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@dataclass(frozen=True)
class ProjectProgress:
    """Regular items and their labels; control items and their labels counted apart."""

    items: int
    items_complete: int
    labels: int
    labels_withdrawn: int
    annotators_active: int
    annotators_withdrawn: int
    labels_per_item: dict[int, int]
    control_items: int = 0
    control_labels: int = 0

    @property
    def percent_complete(self) -> float:
        return 100.0 * self.items_complete / self.items if self.items else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "items_complete": self.items_complete,
            "percent_complete": round(self.percent_complete, 1),
            "labels": self.labels,
            "labels_withdrawn": self.labels_withdrawn,
            "annotators_active": self.annotators_active,
            "annotators_withdrawn": self.annotators_withdrawn,
            "labels_per_item": {str(k): v for k, v in sorted(self.labels_per_item.items())},
            "control_items": self.control_items,
            "control_labels": self.control_labels,
        }


def project_progress(*, project: Project) -> ProjectProgress:
    """Counts from non-withdrawn labels: items fully labeled, annotators, labels per item.

    Item and label counts are of regular items: control items (gold and attention checks)
    are never "complete" and their labels are not the dataset's; they are counted apart.
    """
    return project_progress_for(projects=[project])[project.pk]


def project_progress_for(*, projects: Sequence[Project]) -> dict[int, ProjectProgress]:
    """``project_progress`` of each project, by id: four queries however many projects."""
    ids = [project.pk for project in projects]
    if not ids:
        return {}
    # Taken-down items leave every count, and so do their labels.
    live_labels = Annotation.objects.filter(item=OuterRef("pk"), withdrawn=False)
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    for project_id, n_labels, n_items in (
        Item.objects.filter(project__in=ids, control=ControlKind.NONE, tombstoned_at__isnull=True)
        .annotate(n_labels=_count_per(live_labels, outer="item"))
        .values_list("project", "n_labels")
        .annotate(n_items=Count("pk"))
        .order_by()
    ):
        histograms[project_id][n_labels] = n_items
    control_items = dict(
        Item.objects.filter(project__in=ids, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .values_list("project")
        .annotate(n=Count("pk"))
        .order_by()
    )
    regular = Q(item__control=ControlKind.NONE)
    # Aliases must not be field names: a later filter would read the alias instead.
    labels = {
        row["project"]: row
        for row in Annotation.objects.filter(project__in=ids, item__tombstoned_at__isnull=True)
        .values("project")
        .annotate(
            n_active=Count("pk", filter=regular & Q(withdrawn=False)),
            n_withdrawn=Count("pk", filter=regular & Q(withdrawn=True)),
            n_control=Count("pk", filter=~regular & Q(withdrawn=False)),
        )
        .order_by()
    }
    enrolments = {
        row["project"]: row
        for row in Enrolment.objects.filter(project__in=ids)
        .values("project")
        .annotate(
            n_active=Count("pk", filter=Q(withdrawn_at__isnull=True)),
            n_withdrawn=Count("pk", filter=Q(withdrawn_at__isnull=False)),
        )
        .order_by()
    }
    progress = {}
    for project in projects:
        histogram = histograms.get(project.pk, {})
        project_labels = labels.get(project.pk, {})
        project_enrolments = enrolments.get(project.pk, {})
        progress[project.pk] = ProjectProgress(
            items=sum(histogram.values()),
            items_complete=sum(
                count for n, count in histogram.items() if n >= project.annotations_per_item
            ),
            labels=project_labels.get("n_active", 0),
            labels_withdrawn=project_labels.get("n_withdrawn", 0),
            annotators_active=project_enrolments.get("n_active", 0),
            annotators_withdrawn=project_enrolments.get("n_withdrawn", 0),
            labels_per_item=histogram,
            control_items=control_items.get(project.pk, 0),
            control_labels=project_labels.get("n_control", 0),
        )
    return progress


@dataclass(frozen=True)
class AnnotatorProgress:
    labeled: int
    skipped: int
    remaining: int


def annotator_progress(*, project: Project, annotator: User) -> AnnotatorProgress:
    """How far this annotator is: their labels, skips, and items they could still be given.

    Control items must not be told apart by watching these numbers: ``remaining`` counts
    the unseen control items with the regular ones, so it drops by one whichever kind is
    handed out (and labeled and skipped count both kinds). Once no regular item is left
    no control item is given either, and ``remaining`` is 0.
    """
    return annotator_progress_for(projects=[project], annotator=annotator)[project.pk]


def annotator_progress_for(
    *, projects: Sequence[Project], annotator: User
) -> dict[int, AnnotatorProgress]:
    """``annotator_progress`` in each project, by id: one query however many projects."""
    own = Assignment.objects.filter(project=OuterRef("pk"), annotator=annotator)
    live = Item.objects.filter(project=OuterRef("pk"), tombstoned_at__isnull=True)
    # A regular item whose assignment expired may be given again...
    reusable = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    # ...a control item is shown to an annotator once at most, even after it expired.
    given = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator)
    rows = (
        Project.objects.filter(pk__in=[project.pk for project in projects])
        .annotate(
            n_labeled=_count_per(own.filter(status=Assignment.Status.SUBMITTED), outer="project"),
            n_skipped=_count_per(own.filter(status=Assignment.Status.SKIPPED), outer="project"),
            n_regular_left=_count_per(
                live.filter(
                    control=ControlKind.NONE, slots_taken__lt=OuterRef("annotations_per_item")
                ).filter(~Exists(reusable)),
                outer="project",
            ),
            n_controls_left=_count_per(
                live.exclude(control=ControlKind.NONE).filter(~Exists(given)), outer="project"
            ),
        )
        .order_by()
        .values_list("pk", "n_labeled", "n_skipped", "n_regular_left", "n_controls_left")
    )
    return {
        project_id: AnnotatorProgress(
            labeled, skipped, regular_left + controls_left if regular_left else 0
        )
        for project_id, labeled, skipped, regular_left, controls_left in rows
    }


@dataclass(frozen=True)
class AnnotatorProjectRow:
    """A project as an annotator's project list shows it: their enrolment and their own
    progress, both ``None`` until they join."""

    project: Project
    enrolment: Enrolment | None
    progress: AnnotatorProgress | None


def annotator_project_rows(
    *, annotator: User, projects: Iterable[Project]
) -> list[AnnotatorProjectRow]:
    """The annotator's enrolment (with its consent and project, for the re-consent check)
    and progress in each project, in the given order: two queries however many projects,
    one when they joined none of them."""
    projects = list(projects)
    enrolments = {
        enrolment.project_id: enrolment
        for enrolment in Enrolment.objects.filter(
            annotator=annotator, project__in=[project.pk for project in projects]
        ).select_related("project", "consent")
    }
    joined = [project for project in projects if project.pk in enrolments]
    progress = annotator_progress_for(projects=joined, annotator=annotator) if joined else {}
    return [
        AnnotatorProjectRow(project, enrolments.get(project.pk), progress.get(project.pk))
        for project in projects
    ]


# ---------------------------------------------------------------- quality control


@dataclass(frozen=True)
class ControlAccuracy:
    """How one annotator did on one kind of control item."""

    pseudonym: str
    kind: str
    n: int
    correct: int
    accuracy: float


def item_get_by_external_id(*, project: Project, external_id: str) -> Item:
    """An item of a project the caller already may read, by the researcher's own id."""
    item = (
        Item.objects.select_related("project")
        .filter(project=project, external_id=external_id.strip())
        .first()
    )
    if item is None:
        raise NotFound("No item of this project has that external id.")
    return item


def control_item_list(*, project: Project) -> QuerySet[Item]:
    """A project's gold and attention-check items, each with its number of live labels."""
    return (
        Item.objects.filter(project=project)
        .exclude(control=ControlKind.NONE)
        .annotate(labels=Count("annotations", filter=Q(annotations__withdrawn=False)))
        .order_by("external_id")
    )


def _same_answer(value: Any, expected: Any) -> bool:
    # Multi-label answers are label sets: the order they were stored in does not matter.
    if isinstance(value, list) and isinstance(expected, list):
        return set(map(str, value)) == set(map(str, expected))
    return bool(value == expected)


def control_accuracy(*, project: Project) -> list[ControlAccuracy]:
    """Per annotator and control kind (gold, attention): answers given, answers equal to
    the researcher's expected answer, and their share. Withdrawn labels are left out, so
    withdrawn annotators do not appear. Sorted by pseudonym, then kind."""
    rows = (
        Annotation.objects.filter(
            project=project, withdrawn=False, item__expected_value__isnull=False
        )
        .exclude(item__control=ControlKind.NONE)
        .values_list("annotator__pseudonym", "item__control", "value", "item__expected_value")
    )
    tally: dict[tuple[str, str], list[int]] = {}
    for pseudonym, kind, value, expected in rows:
        counts = tally.setdefault((pseudonym, kind), [0, 0])
        counts[0] += 1
        counts[1] += _same_answer(value, expected)
    return [
        ControlAccuracy(pseudonym, kind, n, correct, correct / n)
        for (pseudonym, kind), (n, correct) in sorted(tally.items())
    ]


# ---------------------------------------------------------------- governance: consent, takedowns


def takedown_list_for(*, user: User, status: str = "") -> QuerySet[TakedownRequest]:
    """Requests this user may see: staff and auditors all, a researcher their projects'."""
    queryset = TakedownRequest.objects.select_related("project", "item", "decided_by")
    if not (user.is_staff or user.is_auditor):
        queryset = queryset.filter(project__in=Project.objects.managed_by(user))
    if status in TakedownRequest.Status.values:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-pk")


def takedown_get_for(*, user: User, takedown_id: int) -> TakedownRequest:
    request = takedown_list_for(user=user).filter(pk=takedown_id).first()
    if request is None:
        raise NotFound("No such takedown request.")
    return request


@dataclass(frozen=True)
class AnnotatorConsentRow:
    pseudonym: str
    given_at: datetime
    text_version: str
    purposes: list[str]
    method: str
    expires_at: datetime | None
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class ConsentReport:
    """What an auditor checks before signing off the people side of a dataset."""

    subject_consent: dict[str, int]
    items_without_consent: list[Item]
    expired_subject_consents: list[Item]
    annotators: list[AnnotatorConsentRow]
    annotators_withdrawn: int
    open_takedowns: list[TakedownRequest]

    def oldest_open_takedown_days(self, now: datetime) -> int | None:
        if not self.open_takedowns:
            return None
        return max((now - request.created_at).days for request in self.open_takedowns)


FINDINGS_LIMIT = 200


def consent_report(*, project: Project) -> ConsentReport:
    """Consent of the people items show, annotators' consents and withdrawals, open takedowns.

    Only pseudonyms identify annotators. Taken-down items are left out: nothing of them
    remains to consent to.
    """
    items = Item.objects.filter(project=project, tombstoned_at__isnull=True, control="")
    counts = dict(
        items.values_list("subject_consent").annotate(n=Count("id")).order_by("subject_consent")
    )
    by_status = {status: counts.get(status, 0) for status in SubjectConsent.values}
    missing = list(
        items.filter(
            subject_consent__in=[SubjectConsent.NOT_OBTAINED, SubjectConsent.UNKNOWN]
        ).order_by("external_id")[:FINDINGS_LIMIT]
    )
    expired = list(
        items.filter(
            subject_consent=SubjectConsent.OBTAINED,
            subject_consent_record__expires_at__lt=timezone.now(),
        )
        .select_related("subject_consent_record")
        .order_by("external_id")[:FINDINGS_LIMIT]
    )
    enrolments = (
        Enrolment.objects.filter(project=project)
        .select_related("annotator", "consent")
        .order_by("consent__given_at")
    )
    annotators = [
        AnnotatorConsentRow(
            pseudonym=enrolment.annotator.pseudonym,
            given_at=enrolment.consent.given_at,
            text_version=enrolment.consent.text_version,
            purposes=list(enrolment.consent.purposes),
            method=enrolment.consent.method,
            expires_at=enrolment.consent.expires_at,
            withdrawn_at=enrolment.withdrawn_at,
        )
        for enrolment in enrolments
    ]
    open_takedowns = list(
        TakedownRequest.objects.filter(project=project, status=TakedownRequest.Status.OPEN)
        .select_related("item")
        .order_by("created_at")
    )
    return ConsentReport(
        subject_consent=by_status,
        items_without_consent=missing,
        expired_subject_consents=expired,
        annotators=annotators,
        annotators_withdrawn=sum(1 for row in annotators if row.withdrawn_at is not None),
        open_takedowns=open_takedowns,
    )


# ---------------------------------------------------------------- governance: licenses


@dataclass(frozen=True)
class LicensedItem:
    """One item's license facts, as the license report and its CSV list them."""

    item_id: int
    external_id: str
    license: str
    license_class: LicenseClass
    unclassified: tuple[str, ...]
    attribution: str
    creator: str
    source: str
    subject_consent: str

    @property
    def findings(self) -> list[str]:
        found = []
        if not self.license:
            found.append("no license recorded")
        elif self.license_class.use == "unspecified":
            found.append("license unknown or not in the catalogue")
        if self.license_class.attribution and not self.attribution:
            found.append("attribution required but missing")
        return found


@dataclass(frozen=True)
class UseAnswer:
    """The combination rules' answer for one intended use, with the items that block it."""

    intended_use: str
    allowed: bool
    blocking: list[tuple[Blocker, list[str]]]
    obligations: tuple[str, ...]
    resulting_class: LicenseClass | None
    resulting_license: str | None


@dataclass(frozen=True)
class LicenseReport:
    items: list[LicensedItem]
    by_license: list[tuple[str, int]]
    by_use: dict[str, int]
    answers: list[UseAnswer]

    def with_finding(self, finding: str) -> list[LicensedItem]:
        return [item for item in self.items if finding in item.findings]

    @property
    def missing_license(self) -> list[LicensedItem]:
        return self.with_finding("no license recorded")

    @property
    def unknown_license(self) -> list[LicensedItem]:
        return self.with_finding("license unknown or not in the catalogue")

    @property
    def missing_attribution(self) -> list[LicensedItem]:
        return self.with_finding("attribution required but missing")


LICENSE_CSV_HEADER = (
    "item_id",
    "external_id",
    "license",
    "use",
    "attribution_required",
    "share_alike",
    "no_derivatives",
    "attribution",
    "creator",
    "source",
    "subject_consent",
    "findings",
)
BLOCKING_EXAMPLES = 10


def license_report_rows(report: LicenseReport) -> Iterator[tuple[object, ...]]:
    for item in report.items:
        yield (
            item.item_id,
            item.external_id,
            item.license,
            item.license_class.use,
            item.license_class.attribution,
            item.license_class.share_alike,
            item.license_class.no_derivatives,
            item.attribution,
            item.creator,
            item.source,
            item.subject_consent,
            "; ".join(item.findings),
        )


def license_report(*, project: Project) -> LicenseReport:
    """Licenses of a project's items (taken-down ones excluded): counts by license and by
    use class, items with missing or unknown licenses or missing attribution, and the
    combination rules' answer for every intended use, naming the items that block it."""
    table = license_table()
    rows = (
        Item.objects.filter(project=project, tombstoned_at__isnull=True)
        .order_by("external_id")
        .values_list(
            "pk",
            "external_id",
            "license",
            "attribution",
            "creator",
            "source__name",
            "subject_consent",
        )
    )
    classes: dict[str, tuple[LicenseClass, tuple[str, ...]]] = {}
    items: list[LicensedItem] = []
    for pk, external_id, expression, attribution, creator, source, consent in rows:
        if expression not in classes:
            try:
                classes[expression] = (
                    license_classify(expression, table=table),
                    unclassified_ids(expression, table=table),
                )
            except ValueError:
                # Stored before the catalogue changed, say: unknown, never an error page.
                classes[expression] = (UNSPECIFIED, (expression,))
        license_class, unclassified = classes[expression]
        items.append(
            LicensedItem(
                pk,
                external_id,
                expression,
                license_class,
                unclassified,
                attribution,
                creator,
                source or "",
                consent,
            )
        )
    by_license = Counter(item.license or "(none)" for item in items).most_common()
    by_use = Counter(item.license_class.use for item in items)
    expressions = [item.license for item in items]
    answers = []
    for intended_use in INTENDED_USES:
        verdict = check_use(expressions, intended_use, table=table)
        blocking = [
            (
                blocker,
                [item.external_id for item in items if item.license == blocker.expression][
                    :BLOCKING_EXAMPLES
                ],
            )
            for blocker in verdict.blocking
        ]
        answers.append(
            UseAnswer(
                intended_use=intended_use,
                allowed=verdict.allowed,
                blocking=blocking,
                obligations=verdict.obligations,
                resulting_class=verdict.resulting_class,
                resulting_license=verdict.resulting_license,
            )
        )
    return LicenseReport(
        items=items,
        by_license=by_license,
        by_use={use: by_use.get(use, 0) for use in USES},
        answers=answers,
    )
