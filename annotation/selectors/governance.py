"""Governance reads for researchers and auditors: takedown requests, the consent report
and the license report.

Takedown requests: staff and auditors see all, a researcher their projects' only. The
reports name annotators by pseudonym only and leave taken-down items out; their lists of
findings are bounded (``FINDINGS_LIMIT`` items per consent finding, ``BLOCKING_EXAMPLES``
per license that blocks a use), and a license the catalogue cannot classify is reported
as unknown, never an error.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet
from django.utils import timezone

from annotation.models import Enrolment, Item, Project, SubjectConsent, TakedownRequest
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


# ---------------------------------------------------------------- licenses


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
