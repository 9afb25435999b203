"""The demo campaign behind ``manage.py create_demo``.

Two projects (PrivacyAlert-style photos, hate speech in short texts), drawn and written
by ``demo.images`` and ``demo.texts``, imported through the real ingest, and labeled by the
simulated annotators of ``demo.personas`` through the real services: consent, survey,
``assignment_next``, ``annotation_submit``, withdrawal. Then controls, releases, takedowns
and each project's disagreement analysis. Nothing is written to the database except
through those services (and the admin's staff flag, which no service grants; that grant
is audited too).

Every random draw comes from a generator seeded by the ``seed`` option.
"""

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image

from annotation.analysis import analysis_compute
from annotation.ingest import describe_error, import_batch_create, import_batch_run
from annotation.models import (
    ImportBatch,
    Item,
    Modality,
    Project,
    ProjectStatus,
    SubjectConsent,
    TakedownRequest,
)
from annotation.selectors import project_progress
from annotation.services import (
    annotation_submit,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
    item_control_set,
    item_subject_consent_set,
    project_create,
    project_transition,
    project_update,
    takedown_decide,
    takedown_file,
)
from annotation.surveys import DEFAULT_SURVEY
from core.models import Role, User
from core.services import user_create
from demo.errors import DemoError
from demo.images import (
    PHOTO_CLUB_LICENSE,
    PRIVACY_VALUES,
    SCENE_PRIVACY,
    DemoImage,
    images_archive,
)
from demo.personas import (
    ANNOTATOR_PREFIX,
    Persona,
    hate_label,
    pair_rng,
    personas_generate,
    privacy_label,
)
from demo.texts import DemoText, distinct_text_count, texts_csv, texts_generate
from ml.models import DatasetVersion, TrainingRun
from ml.services import dataset_version_build_now, training_run_train_now
from provenance.models import LicenseCatalogEntry, LicenseUse
from provenance.services import audit_record, license_catalogue_seed, license_entry_save

DEMO_PASSWORD = "chorus-demo-2026"  # noqa: S105 - printed for everyone; demo accounts only
DEMO_URL = "http://127.0.0.1:8000/"
RESEARCHER_USERNAME = "researcher"
AUDITOR_USERNAME = "auditor"
ADMIN_USERNAME = "admin"
IMAGE_PROJECT_TITLE = "Demo: would you share this photo? (PrivacyAlert-style)"
TEXT_PROJECT_TITLE = "Demo: hate speech in short texts"
DEFAULT_K = 5


@dataclass(frozen=True)
class DemoOptions:
    annotators: int = 30
    images: int = 60
    texts: int = 120
    seed: int = 7

    @property
    def late_images(self) -> int:
        """Images imported after the crowd is done, left for people trying the demo."""
        return max(1, self.images // 8)

    @property
    def late_texts(self) -> int:
        return max(1, self.texts // 8)

    def validate(self) -> None:
        if self.annotators < 2:
            raise DemoError("--annotators must be at least 2 (one of them withdraws).")
        if self.annotators > 99:
            raise DemoError("--annotators must be at most 99.")
        if not 1 <= self.images <= 2000:
            raise DemoError("--images must be between 1 and 2000.")
        most_texts = distinct_text_count() - self.late_texts
        if not 1 <= self.texts <= most_texts:
            raise DemoError(f"--texts must be between 1 and {most_texts}.")

    @property
    def k(self) -> int:
        # One annotator per project withdraws; the rest must still be able to fill k.
        return min(DEFAULT_K, self.annotators - 1)


# ---------------------------------------------------------------- reading the demo back


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    look_at: str


def demo_projects() -> list[Project]:
    return list(
        Project.objects.filter(
            owner__username=RESEARCHER_USERNAME,
            title__in=(IMAGE_PROJECT_TITLE, TEXT_PROJECT_TITLE),
        ).order_by("modality")
    )


def demo_exists() -> bool:
    return bool(demo_projects())


def demo_usernames_taken() -> list[str]:
    """Demo usernames that already exist (a clash when the demo itself is absent)."""
    fixed = (RESEARCHER_USERNAME, AUDITOR_USERNAME, ADMIN_USERNAME)
    taken = set(User.objects.filter(username__in=fixed).values_list("username", flat=True))
    taken |= set(
        User.objects.filter(username__regex=rf"^{ANNOTATOR_PREFIX}[0-9]{{2}}$").values_list(
            "username", flat=True
        )
    )
    return sorted(taken)


def demo_logins() -> list[Login]:
    annotators = list(
        User.objects.filter(role=Role.ANNOTATOR, username__regex=rf"^{ANNOTATOR_PREFIX}[0-9]{{2}}$")
        .order_by("username")
        .values_list("username", flat=True)
    )
    logins = [
        Login(
            RESEARCHER_USERNAME,
            DEMO_PASSWORD,
            "researcher",
            "owns both projects: Analysis (agreement, groups, contested items), gold "
            "items, takedown decisions, import; API at /api/v1/",
        ),
        Login(
            AUDITOR_USERNAME,
            DEMO_PASSWORD,
            "auditor",
            "read-only: license and consent reports (with findings), takedowns, "
            "analyses, the audit log and its chain check",
        ),
        Login(ADMIN_USERNAME, DEMO_PASSWORD, "staff admin", "Django admin at /admin/"),
    ]
    if annotators:
        span = annotators[0] if len(annotators) == 1 else f"{annotators[0]}..{annotators[-1]}"
        logins.append(
            Login(
                span,
                DEMO_PASSWORD,
                "annotator",
                "annotator home, consent, survey, own labels (blind: never others')",
            )
        )
    return logins


def demo_media_names() -> list[str]:
    """Stored files of every item and staged upload: what a database flush orphans."""
    names = [name for name in Item.objects.values_list("image", flat=True) if name]
    names += [name for name in ImportBatch.objects.values_list("upload", flat=True) if name]
    return names


def media_delete(names: Sequence[str]) -> int:
    deleted = 0
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    return deleted


# ---------------------------------------------------------------- building it


@dataclass
class ProjectReport:
    title: str
    modality: str
    k: int
    progress: dict[str, Any]
    enrolled: int
    surveys_full: int
    surveys_partial: int
    surveys_skipped: int
    withdrawn: list[str]
    skipped_items: int
    agreement: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoReport:
    projects: list[ProjectReport] = field(default_factory=list)
    images_with_metadata: int = 0
    metadata_removed: dict[str, int] = field(default_factory=dict)
    stored_images_still_tagged: int = 0
    licenses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


Log = Callable[[str], None]


def _create_people(personas: Sequence[Persona], log: Log) -> tuple[User, list[User]]:
    researcher = user_create(
        username=RESEARCHER_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.RESEARCHER,
        email="researcher@example.org",
    )
    user_create(
        username=AUDITOR_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.AUDITOR,
        email="auditor@example.org",
    )
    admin = user_create(
        username=ADMIN_USERNAME,
        password=DEMO_PASSWORD,
        role=Role.RESEARCHER,
        email="admin@example.org",
    )
    # No service grants staff: it is an operator's act (createsuperuser does the same),
    # recorded in the audit log as the governance action it is.
    admin.is_staff = True
    admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        actor=None,
        action="user.staff_grant",
        obj=admin,
        payload={"pseudonym": admin.pseudonym, "by": "create_demo"},
    )
    annotators = [
        user_create(
            username=persona.username,
            password=DEMO_PASSWORD,
            role=Role.ANNOTATOR,
            email=f"{persona.username}@example.org",
        )
        for persona in personas
    ]
    log(f"Created researcher, auditor, admin and {len(annotators)} annotators.")
    return researcher, annotators


def _import(project: Project, researcher: User, name: str, content: bytes) -> ImportBatch:
    batch = import_batch_create(
        project=project, actor=researcher, upload=SimpleUploadedFile(name, content)
    )
    # The run is enqueued on commit, which the demo's one transaction defers to its end,
    # and no worker can see the uncommitted batch: run it here. The enqueued run then
    # finds the batch done and does nothing (its status guard).
    batch = import_batch_run(batch_id=batch.pk)
    if batch.status != ImportBatch.Status.DONE:
        problems = "; ".join(describe_error(error) for error in batch.errors[:5])
        raise DemoError(f"Importing {name} ended {batch.status}: {problems}")
    return batch


def _create_projects(
    researcher: User, options: DemoOptions, rng: random.Random, log: Log
) -> tuple[Project, Project, list[DemoImage], list[DemoText], list[DemoText]]:
    image_project = project_create(
        owner=researcher,
        preset="privacy_alert",
        title=IMAGE_PROJECT_TITLE,
        description=(
            "Would you share this photo, and with whom? Drawn scenes (documents, screens, "
            "family rooms, parties, beaches, houses, streets, landscapes) rated on the "
            "PrivacyAlert 4-point scale. All images are synthetic."
        ),
        annotations_per_item=options.k,
        compensation_amount=Decimal("0.08"),
        compensation_currency="EUR",
        compensation_unit="per_item",
        risk_disclosure=(
            "Some photos suggest private situations (documents, screens, people at home). "
            "No real person or place is shown: every image is drawn by a program."
        ),
        data_use_statement=(
            "Your ratings, under a random pseudonym, and your optional survey answers are "
            "used to study how people judge photo privacy and are published in a research "
            "dataset. Nothing identifying you is published."
        ),
        survey=DEFAULT_SURVEY,
    )
    text_project = project_create(
        owner=researcher,
        preset="hate_speech",
        title=TEXT_PROJECT_TITLE,
        description=(
            "Is this short text hateful, offensive, or neither? Generated texts about "
            "invented groups (Zorblaxians, Quellites, ...), including satire and "
            "counter-speech."
        ),
        annotations_per_item=options.k,
        compensation_amount=Decimal("12.00"),
        compensation_currency="EUR",
        compensation_unit="per_hour",
        risk_disclosure=(
            "Some texts are insulting or hateful. They target invented groups only and "
            "contain no slurs, but reading them can still be unpleasant. Take breaks; you "
            "can stop or withdraw at any time."
        ),
        data_use_statement=(
            "Your labels, under a random pseudonym, and your optional survey answers are "
            "used to study disagreement in hate-speech labeling and are published in a "
            "research dataset."
        ),
        survey=DEFAULT_SURVEY,
    )
    license_catalogue_seed()
    license_entry_save(
        entry=LicenseCatalogEntry(
            spdx_id=PHOTO_CLUB_LICENSE,
            name="Campus photo club licence: academic research only",
            use=LicenseUse.ACADEMIC_ONLY,
            attribution=True,
            terms_url="https://photoclub.example.edu/licence",
            source_url="https://photoclub.example.edu/licence",
            notes="Invented for the demo: a custom license registered by staff.",
        ),
        actor=None,
    )
    archive, images = images_archive(options.images, rng)
    _import(image_project, researcher, "demo-photos.zip", archive)
    all_texts = texts_generate(options.texts + options.late_texts, rng)
    texts, late_texts = all_texts[: options.texts], all_texts[options.texts :]
    _import(text_project, researcher, "demo-texts.csv", texts_csv(texts, rng))
    log(f"Imported {len(images)} drawn images and {len(texts)} texts through ingest.")
    controls = _mark_controls(image_project, text_project, images, texts, researcher)
    log(
        f"Marked {controls} items as gold or attention checks, mixed in at "
        f"{CONTROL_RATE:.0%} and never shown as such."
    )
    for project in (image_project, text_project):
        project_transition(project=project, actor=researcher, status=ProjectStatus.OPEN)
    return image_project, text_project, images, texts, late_texts


CONTROL_RATE = 0.08
GOLD_IMAGE_KINDS = ("document", "landscape", "street", "screen")


def _mark_controls(
    image_project: Project,
    text_project: Project,
    images: Sequence[DemoImage],
    texts: Sequence[DemoText],
    researcher: User,
) -> int:
    """Gold photos whose answer the researcher is sure of (a document is clearly private, a
    landscape clearly public) and attention-check texts whose answer is unmistakable."""
    marked = 0
    first_of_kind = {image.kind: image for image in reversed(images)}
    for kind in GOLD_IMAGE_KINDS:
        if kind not in first_of_kind:  # a small demo may draw no image of this kind
            continue
        image = first_of_kind[kind]
        item = Item.objects.get(project=image_project, external_id=image.external_id)
        expected = PRIVACY_VALUES[min(3, max(0, round(SCENE_PRIVACY[kind])))]
        item_control_set(item=item, actor=researcher, control="gold", expected_value=expected)
        marked += 1
    for category, expected in (("hateful", "hateful"), ("neither", "neither")):
        chosen = [text for text in texts if text.category == category][:2]
        for text in chosen:
            item = Item.objects.get(project=text_project, external_id=text.external_id)
            item_control_set(
                item=item, actor=researcher, control="attention", expected_value=expected
            )
            marked += 1
    for project in (image_project, text_project):
        project_update(project=project, actor=researcher, data={"control_rate": CONTROL_RATE})
    return marked


def _import_late_arrivals(
    *,
    researcher: User,
    image_project: Project,
    text_project: Project,
    late_texts: Sequence[DemoText],
    options: DemoOptions,
    rng: random.Random,
    log: Log,
) -> None:
    """A second batch per project after the crowd is done: work left for a human to try."""
    archive, late_images = images_archive(options.late_images, rng, start=options.images)
    _import(image_project, researcher, "demo-photos-late.zip", archive)
    _import(text_project, researcher, "demo-texts-late.csv", texts_csv(late_texts, rng))
    log(
        f"Imported {len(late_images)} more images and {len(late_texts)} more texts, "
        "unlabeled: sign in as any annotator to label them."
    )


@dataclass
class _Campaign:
    """One project's simulated labeling: who is active, when someone withdraws."""

    project: Project
    members: list[tuple[Persona, User]]
    label: Callable[[Item, Persona, random.Random], tuple[str, int]]
    withdraw_after: int
    withdraw_username: str = ""
    labels: int = 0
    skipped: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    withdrawn: list[str] = field(default_factory=list)


def _enrol(campaign: _Campaign, rng: random.Random) -> tuple[int, int, int]:
    full = partial = skipped = 0
    for persona, user in campaign.members:
        enrolment = enrolment_create(project=campaign.project, annotator=user)
        if persona.survey_mode == "skipped":
            skipped += 1
            continue
        enrolment_survey_submit(enrolment=enrolment, answers=persona.survey_answers(rng))
        if persona.survey_mode == "partial":
            partial += 1
        else:
            full += 1
    return full, partial, skipped


def _label_once(
    campaign: _Campaign, persona: Persona, user: User, seed: int, allow_skips: bool
) -> bool:
    """One next-item + submit for this annotator; False when nothing is left for them."""
    assignment = assignment_next(project=campaign.project, annotator=user)
    if assignment is None:
        return False
    item = assignment.item
    pair = pair_rng(seed, item, persona.username)
    if allow_skips and pair.random() < 0.02:
        assignment_skip(assignment=assignment, annotator=user)
        campaign.skipped += 1
        return True
    value, confidence = campaign.label(item, persona, pair)
    rationale = ""
    if pair.random() < 0.1:
        rationale = f"Went with '{value}' after a second look."
    annotation_submit(
        annotator=user,
        item=item,
        value=value,
        confidence=confidence,
        rationale=rationale,
        time_spent_ms=int(pair.lognormvariate(math.log(7000), 0.5)),
    )
    campaign.labels += 1
    campaign.counts[persona.username] += 1
    return True


def _maybe_withdraw(campaign: _Campaign, active: list[tuple[Persona, User]]) -> bool:
    """Once labeling is far enough along, one annotator who has labeled leaves."""
    if campaign.withdrawn or campaign.labels < campaign.withdraw_after:
        return False
    candidates = [pair for pair in active if campaign.counts[pair[0].username]]
    chosen = [pair for pair in candidates if pair[0].username == campaign.withdraw_username]
    if not (chosen or candidates):
        return False
    persona, user = (chosen or candidates)[0]
    enrolment = campaign.project.enrolments.get(annotator=user)
    enrolment_withdraw(enrolment=enrolment, actor=user)
    campaign.withdrawn.append(persona.username)
    active.remove((persona, user))
    return True


def _run_labeling(campaigns: Sequence[_Campaign], options: DemoOptions, rng: random.Random) -> None:
    """Round-robin over (project, annotator) until nobody gets another item."""
    allow_skips = options.annotators >= 2 * options.k + 2
    for campaign in campaigns:
        active = list(campaign.members)
        finished: list[tuple[Persona, User]] = []
        while active:
            order = list(active)
            rng.shuffle(order)
            for pair in order:
                if pair not in active:
                    continue
                if not _label_once(campaign, pair[0], pair[1], options.seed, allow_skips):
                    active.remove(pair)
                    finished.append(pair)
                elif _maybe_withdraw(campaign, active):
                    # The withdrawn labels freed slots: those who ran out may label again.
                    active.extend(finished)
                    finished.clear()


RELEASE_TEXT = (
    "I agree that photos of me taken at the campus photo club may be used, without my "
    "name, to study how people judge photo privacy, and published in a research dataset."
)


def _record_releases(project: Project, researcher: User, rng: random.Random) -> int:
    """Signed releases for some pictures of people: consent obtained, with its evidence."""
    candidates = list(
        Item.objects.filter(project=project, subject_consent=SubjectConsent.UNKNOWN).order_by(
            "external_id"
        )
    )
    chosen = rng.sample(candidates, k=len(candidates) // 3)
    for number, item in enumerate(chosen, start=1):
        item_subject_consent_set(
            item=item,
            actor=researcher,
            status=SubjectConsent.OBTAINED,
            consent_text=RELEASE_TEXT,
            purposes=["research", "dataset-publication"],
            evidence=f"Signed release PC-{number:03d}, photo club archive, folder 2026",
            expires_at=timezone.now() + timedelta(days=3 * 365),
        )
    return len(chosen)


def _file_takedowns(
    image_project: Project, text_project: Project, researcher: User, log: Log
) -> None:
    """Requests from the public: one accepted (the item is tombstoned), two left open."""
    photo = (
        Item.objects.filter(project=image_project, subject_consent=SubjectConsent.NOT_OBTAINED)
        .order_by("external_id")
        .first()
    )
    if photo is not None:
        (accepted,) = takedown_file(
            reference=str(photo.pk),
            kind=TakedownRequest.Kind.PRIVACY,
            reason="This is me at a party; I never agreed to be in a dataset.",
            contact="requester@example.org",
        )
        takedown_decide(
            request=accepted,
            actor=researcher,
            accept=True,
            reason="The person shown did not consent; GDPR art. 17 applies.",
        )
    text = Item.objects.filter(project=text_project).order_by("external_id").first()
    if text is not None:
        takedown_file(
            reference=text.sha256,
            kind=TakedownRequest.Kind.COPYRIGHT,
            reason="I wrote this comment and did not license it for reuse.",
            contact="author@example.net",
        )
    takedown_file(
        reference="IMG_2041.jpg",
        kind=TakedownRequest.Kind.OTHER,
        reason="Is a photo of my house in your dataset?",
    )
    log("Takedowns: one accepted (its item tombstoned), two open for the reports to show.")


def _image_label(
    kinds: dict[str, str],
) -> Callable[[Item, Persona, random.Random], tuple[str, int]]:
    def label(item: Item, persona: Persona, rng: random.Random) -> tuple[str, int]:
        return privacy_label(kind=kinds[item.external_id], persona=persona, rng=rng)

    return label


def _text_label(
    categories: dict[str, str],
) -> Callable[[Item, Persona, random.Random], tuple[str, int]]:
    def label(item: Item, persona: Persona, rng: random.Random) -> tuple[str, int]:
        return hate_label(category=categories[item.external_id], persona=persona, rng=rng)

    return label


def _image_checks(project: Project, report: DemoReport) -> None:
    """What ingest removed, and proof that no stored copy still carries it."""
    removed: Counter[str] = Counter()
    still_tagged = 0
    for item in Item.objects.filter(project=project, tombstoned_at__isnull=True).only(
        "image", "removed_metadata"
    ):
        if item.removed_metadata:
            report.images_with_metadata += 1
            removed.update(item.removed_metadata)
        with item.image.open("rb") as handle, Image.open(handle) as stored:
            exif = stored.getexif()
            if (
                len(exif)
                or stored.info.get("xmp")
                or any("xmp" in key.lower() for key in getattr(stored, "text", {}) or {})
            ):
                still_tagged += 1
    report.metadata_removed = dict(sorted(removed.items()))
    report.stored_images_still_tagged = still_tagged


def _build_dataset(project: Project, researcher: User) -> dict[str, Any]:
    version = dataset_version_build_now(project=project, actor=researcher, recipe={})
    if version.status != DatasetVersion.Status.DONE:
        raise DemoError(f"Building a dataset of {project.title} failed: {version.error}")
    return {"label": version.label, "id": version.pk, **version.counts}


# What the demo's baselines report errors by: two item metadata keys each (their
# intersection too, as in the face-recognition table), and every annotator group.
DEMO_GROUPS = {"text": ["target_group", "length"], "image": ["people", "file_format"]}
MIN_SPLIT_ITEMS = 3


def _train_baseline(project: Project, version_id: int, researcher: User) -> dict[str, Any]:
    """One baseline on the project's first version, on the CPU: a frozen MiniLM and a linear
    head on soft labels for texts (learning from disagreement), a small CNN with
    augmentation on the majority label for images."""
    version = DatasetVersion.objects.get(pk=version_id)
    items = version.counts.get("items") or {}
    if min(items.get("validation", 0), items.get("test", 0)) < MIN_SPLIT_ITEMS:
        # A demo made smaller than the default has nothing to validate or test on.
        return {"skipped": f"too few items to validate and test on ({items})"}
    text = project.modality == Modality.TEXT
    run = training_run_train_now(
        version=version,
        actor=researcher,
        request={
            "target": "soft" if text else "majority",
            "device": "cpu",
            "group_by": DEMO_GROUPS[project.modality],
            "annotator_questions": [question["key"] for question in DEFAULT_SURVEY],
            "min_group_size": 5,
            "params": {"max_epochs": 40, "patience": 8}
            if text
            else {"max_epochs": 15, "patience": 5, "image_size": 48},
        },
    )
    if run.status != TrainingRun.Status.DONE:
        raise DemoError(f"Training a baseline on {project.title} failed: {run.error}")
    test = run.metrics.get("test", {})
    return {
        "id": run.pk,
        "target": run.target,
        "accuracy": test.get("accuracy"),
        "macro_f1": test.get("macro_f1"),
        "seconds": run.wall_seconds,
    }


def demo_build(*, options: DemoOptions, log: Log) -> DemoReport:
    """Build the whole demo in one transaction: all of it, or nothing."""
    options.validate()
    started = time.monotonic()
    rng = random.Random(options.seed)  # noqa: S311 - reproducible simulation, not security
    personas = personas_generate(options.annotators, options.k, rng)
    report = DemoReport()
    with transaction.atomic():
        researcher, annotators = _create_people(personas, log)
        image_project, text_project, images, texts, late_texts = _create_projects(
            researcher, options, rng, log
        )
        crowd = list(zip(personas, annotators, strict=True))
        targets = {
            image_project.pk: options.images * options.k,
            text_project.pk: options.texts * options.k,
        }
        image_members = [pair for pair in crowd if pair[0].enrols_images]
        text_members = [pair for pair in crowd if pair[0].enrols_texts]
        campaigns = [
            _Campaign(
                project=image_project,
                members=image_members,
                label=_image_label({image.external_id: image.kind for image in images}),
                withdraw_after=int(targets[image_project.pk] * 0.4),
                withdraw_username=image_members[-1][0].username,
            ),
            _Campaign(
                project=text_project,
                members=text_members,
                label=_text_label({text.external_id: text.category for text in texts}),
                withdraw_after=int(targets[text_project.pk] * 0.5),
                withdraw_username=text_members[len(text_members) // 2][0].username,
            ),
        ]
        surveys = {id(c): _enrol(c, rng) for c in campaigns}
        log("Annotators consented; most answered the survey. Labeling through the services...")
        _run_labeling(campaigns, options, rng)
        _import_late_arrivals(
            researcher=researcher,
            image_project=image_project,
            text_project=text_project,
            late_texts=late_texts,
            options=options,
            rng=rng,
            log=log,
        )
        releases = _record_releases(image_project, researcher, rng)
        log(f"Recorded {releases} signed releases for pictures of people.")
        _file_takedowns(image_project, text_project, researcher, log)
        # The main job: each project's disagreement analysis, as its researcher sees it.
        summaries = {
            campaign.project.pk: analysis_compute(project=campaign.project, filters={}).summary
            for campaign in campaigns
        }
        log("Computed the disagreement analyses (agreement, Dawid-Skene, annotator groups).")
        # Then each project's first dataset version, by the default recipe: the withdrawn
        # annotator's labels and the taken-down item appear among what was left out.
        datasets = {
            campaign.project.pk: _build_dataset(campaign.project, researcher)
            for campaign in campaigns
        }
        log("Built a dataset version of each project (Parquet bundle, splits, manifest).")
        baselines = {
            campaign.project.pk: _train_baseline(
                campaign.project, datasets[campaign.project.pk]["id"], researcher
            )
            for campaign in campaigns
        }
        log("Trained a baseline on each version (text: MiniLM + head; images: a small CNN).")
        _image_checks(image_project, report)
        for campaign in campaigns:
            project = campaign.project
            full, partial, skipped = surveys[id(campaign)]
            report.projects.append(
                ProjectReport(
                    title=project.title,
                    modality=project.modality,
                    k=project.annotations_per_item,
                    progress=project_progress(project=project).as_dict(),
                    enrolled=len(campaign.members),
                    surveys_full=full,
                    surveys_partial=partial,
                    surveys_skipped=skipped,
                    withdrawn=campaign.withdrawn,
                    skipped_items=campaign.skipped,
                    agreement=summaries[project.pk],
                    dataset=datasets[project.pk],
                    baseline=baselines[project.pk],
                )
            )
        report.licenses = dict(
            Counter(
                license_expression or "(none)"
                for license_expression in Item.objects.filter(
                    project__in=(image_project, text_project)
                ).values_list("license", flat=True)
            ).most_common()
        )
    report.seconds = time.monotonic() - started
    return report
