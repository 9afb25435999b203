"""The terms an annotator consents to, their version, and what changed between versions.

The consent text is built from the project's material terms only (pay, risks, data use,
instructions), so its sha256 (``provenance.services.consent_text_version``) changes exactly
when a change must be consented to again. An enrolment whose consent record carries another
version than the project's current one needs re-consent before its next item.
"""

import difflib
from dataclasses import dataclass
from decimal import Decimal

from annotation.models import CompensationUnit, Enrolment, Project, ProjectStatus
from provenance.services import consent_text_version

# Editing any of these on an open project asks every enrolled annotator to consent again.
MATERIAL_FIELDS = (
    "instructions",
    "compensation_amount",
    "compensation_currency",
    "compensation_unit",
    "risk_disclosure",
    "data_use_statement",
)
STANDING_TERMS = (
    "Your labels are stored under a random pseudonym. Your survey answers are optional and "
    "self-reported. You can withdraw at any time; your labels are then excluded from every "
    "later analysis and export."
)


@dataclass(frozen=True)
class ConsentTerm:
    key: str
    label: str
    text: str


def project_consent_terms(project: Project) -> list[ConsentTerm]:
    """The material terms, in the order the consent text lists them."""
    unit = "item" if project.compensation_unit == CompensationUnit.PER_ITEM else "hour"
    amount = Decimal(project.compensation_amount).quantize(Decimal("0.01"))
    return [
        ConsentTerm("risks", "Risks", project.risk_disclosure.strip()),
        ConsentTerm("pay", "Pay", f"{amount} {project.compensation_currency} per {unit}."),
        ConsentTerm("data_use", "How your data will be used", project.data_use_statement.strip()),
        ConsentTerm("instructions", "Instructions", project.instructions.strip()),
        ConsentTerm("standing", "Always", STANDING_TERMS),
    ]


def project_consent_text(project: Project) -> str:
    """The exact text an annotator consents to; its hash is the consent version."""
    return "\n\n".join(f"{term.label}: {term.text}" for term in project_consent_terms(project))


def project_consent_version(project: Project) -> str:
    return consent_text_version(project_consent_text(project))


def enrolment_needs_reconsent(enrolment: Enrolment) -> bool:
    """An active enrolment whose consent was given to other terms than the current ones."""
    return (
        enrolment.withdrawn_at is None
        and enrolment.consent.text_version != project_consent_version(enrolment.project)
    )


def enrolments_to_reconsent(*, project: Project, version: str) -> int:
    """How many active enrolments were consented under another version than ``version``."""
    if project.status == ProjectStatus.DRAFT:
        return 0
    return (
        Enrolment.objects.filter(project=project, withdrawn_at__isnull=True)
        .exclude(consent__text_version=version)
        .count()
    )


@dataclass(frozen=True)
class ConsentChange:
    """One line of a consent diff: ``kind`` is "removed", "added" or "same"."""

    kind: str
    text: str


def consent_changes(old_text: str, new_text: str, *, context: int = 1) -> list[ConsentChange]:
    """What changed between two consent texts, line by line, with a little context.

    Lines far from any change are left out (an empty list means no change).
    """
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    changes: list[ConsentChange] = []
    for group in matcher.get_grouped_opcodes(context):
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                changes.extend(ConsentChange("same", line) for line in old_lines[i1:i2])
                continue
            changes.extend(ConsentChange("removed", line) for line in old_lines[i1:i2])
            changes.extend(ConsentChange("added", line) for line in new_lines[j1:j2])
    return changes
