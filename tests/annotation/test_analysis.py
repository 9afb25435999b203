"""Agreement analysis services: what is read, what is stored, when it is recomputed."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.analysis import (
    NOT_ENOUGH_LABELS,
    analysis_compute,
    analysis_filters_clean,
    analysis_filters_key,
    analysis_get,
    analysis_group_result,
    analysis_refresh,
    item_disagreement_list,
    item_disagreement_table,
)
from annotation.analysis import service as analysis_module
from annotation.models import (
    AgreementAnalysis,
    Annotation,
    ControlKind,
    Enrolment,
    Item,
    ItemDisagreement,
)
from annotation.services import annotation_update, enrolment_survey_submit, enrolment_withdraw
from annotation.surveys import PREFER_NOT_TO_SAY
from annotation.tasks import agreement_analysis_task
from core.errors import NotFound, ValidationFailed
from core.jobs.runner import job_run_here
from tests.annotation.analysis_data import (
    HATE,
    PRIVACY,
    label_everything,
    make_labelled_project,
)
from tests.annotation.factories import make_enrolled_annotator, make_open_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled():
    return make_labelled_project()


@pytest.fixture
def compute_calls(monkeypatch) -> list[int]:
    """Counts real computations (the expensive part) while letting them run."""
    calls: list[int] = []
    original = analysis_module._compute

    def counting(analysis, filters):
        calls.append(analysis.pk)
        return original(analysis, filters)

    monkeypatch.setattr(analysis_module, "_compute", counting)
    return calls


def test_analysis_compute_labelled_project_stores_summary_items_and_annotators(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    assert analysis.status == AgreementAnalysis.Status.DONE
    assert analysis.error == ""
    summary = analysis.summary
    assert summary["enough_data"] is True
    assert (summary["n_items"], summary["n_labels"], summary["n_annotators"]) == (6, 24, 4)
    assert summary["level"] == "nominal"
    assert -1 <= summary["alpha"] <= 1
    assert 0 <= summary["percent_agreement"] <= 1
    assert summary["fleiss_kappa"] is not None  # every item has 4 labels
    assert summary["ds_iterations"] >= 1
    assert sum(b["items"] for b in summary["entropy_histogram"]) == 6
    assert analysis.annotation_count == 24
    assert analysis.computed_at is not None
    assert len(analysis.fingerprint) == 64
    rows = list(ItemDisagreement.objects.filter(analysis=analysis))
    assert len(rows) == 6
    for row in rows:
        assert row.n_labels == 4
        assert abs(sum(row.soft_label.values()) - 1) < 1e-6
        assert set(row.soft_label) == set(HATE)
        assert row.ds_label in HATE
        assert row.ds_confidence is not None and 0 < row.ds_confidence <= 1
    by_pseudonym = {row["pseudonym"]: row for row in analysis.annotators}
    assert set(by_pseudonym) == {a.pseudonym for a in labelled.annotators}
    assert all(row["n_labels"] == 6 for row in by_pseudonym.values())
    # Annotator 2 is always one category off: never with the others' majority.
    outlier = by_pseudonym[labelled.annotators[2].pseudonym]
    assert outlier["majority_agreement"] == 0.0
    assert outlier["alpha_without"] > analysis.summary["alpha"]


def test_analysis_compute_stores_pseudonyms_never_usernames_or_ids(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    stored = json.dumps([analysis.summary, analysis.annotators, analysis.groups])
    for annotator in labelled.annotators:
        assert annotator.username not in stored
        assert annotator.email not in stored
        assert annotator.pseudonym in stored


def test_analysis_compute_withdrawn_labels_excluded(labelled):
    leaver = labelled.annotators[3]
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=labelled.project, annotator=leaver), actor=leaver
    )

    analysis = analysis_compute(project=labelled.project, filters={})

    assert analysis.summary["n_labels"] == 18
    assert analysis.summary["n_annotators"] == 3
    assert leaver.pseudonym not in json.dumps([analysis.annotators, analysis.groups])
    assert set(
        ItemDisagreement.objects.filter(analysis=analysis).values_list("n_labels", flat=True)
    ) == {3}


def test_analysis_compute_control_and_taken_down_items_excluded_control_scored(labelled):
    items = list(Item.objects.filter(project=labelled.project).order_by("pk"))
    # Item 0: everyone said hateful except annotator 2 ("offensive").
    Item.objects.filter(pk=items[0].pk).update(control=ControlKind.GOLD, expected_value="hateful")
    Item.objects.filter(pk=items[1].pk).update(
        control=ControlKind.ATTENTION, expected_value="offensive"
    )
    Item.objects.filter(pk=items[2].pk).update(tombstoned_at=timezone.now())

    analysis = analysis_compute(project=labelled.project, filters={})

    assert analysis.summary["n_items"] == 3
    assert analysis.summary["n_labels"] == 12
    analysed = set(
        ItemDisagreement.objects.filter(analysis=analysis).values_list("item_id", flat=True)
    )
    assert analysed == {item.pk for item in items[3:]}
    rows = {row["pseudonym"]: row for row in analysis.annotators}
    first, third = rows[labelled.annotators[0].pseudonym], rows[labelled.annotators[2].pseudonym]
    assert (first["gold_n"], first["gold_correct"], first["gold_accuracy"]) == (1, 1, 1.0)
    assert (third["gold_n"], third["gold_correct"], third["gold_accuracy"]) == (1, 0, 0.0)
    assert (first["attention_n"], first["attention_correct"]) == (1, 1)
    assert rows[labelled.annotators[3].pseudonym]["attention_accuracy"] == 0.0


def test_analysis_compute_since_until_filters_restrict_by_label_day(labelled):
    old_day = timezone.now() - timedelta(days=10)
    first = labelled.annotators[0]
    Annotation.objects.filter(annotator=first).update(created_at=old_day)
    cutoff = (timezone.now() - timedelta(days=5)).date().isoformat()

    recent = analysis_compute(project=labelled.project, filters={"since": cutoff})
    older = analysis_compute(project=labelled.project, filters={"until": cutoff})

    assert recent.summary["n_labels"] == 18
    assert first.pseudonym not in json.dumps(recent.annotators)
    assert older.summary["n_labels"] == 6
    assert older.summary["enough_data"] is False
    assert recent.pk != older.pk
    assert recent.filters == {"since": cutoff}


def test_analysis_compute_question_filter_keeps_annotators_who_answered(labelled):
    analysis = analysis_compute(project=labelled.project, filters={"question": "age_group"})

    # Annotator 3 answered "prefer not to say": left out.
    assert analysis.summary["n_annotators"] == 3
    assert labelled.annotators[3].pseudonym not in json.dumps(analysis.annotators)


def test_analysis_compute_groups_per_survey_question(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    age = analysis.groups["age_group"]
    assert age["status"] == "done"
    assert {g["group"] for g in age["groups"]} == {"18-24", "25-34", PREFER_NOT_TO_SAY}
    young = next(g for g in age["groups"] if g["group"] == "18-24")
    assert young["n_annotators"] == 2
    assert young["alpha"] == 1.0  # annotators 0 and 1 always agree
    assert len(age["pairs"]) == 3
    assert all(p["effect_kind"] == "js_divergence" for p in age["pairs"])
    assert all(0 < p["p_value"] <= 1 for p in age["pairs"])
    # Nobody answered these: one group only.
    assert analysis.groups["gender"]["status"] == "skipped"
    assert analysis.groups["region"]["message"]


def test_analysis_compute_ordinal_schema_uses_ordinal_level_and_mean_difference():
    def choose(annotator: int, item: int) -> str:
        return PRIVACY[min(item % 4 + (annotator == 2), 3)]

    data = make_labelled_project(preset="privacy_alert", choose=choose)

    analysis = analysis_compute(project=data.project, filters={})

    assert analysis.summary["level"] == "ordinal"
    assert analysis.summary["alpha"] > 0.5
    pairs = analysis.groups["age_group"]["pairs"]
    assert all(p["effect_kind"] == "mean_difference" for p in pairs)
    assert all(g["mean_label"] is not None for g in analysis.groups["age_group"]["groups"])


def test_analysis_compute_multi_label_schema_refused_clearly():
    project = make_open_project(2, preset="hate_speech")
    project.label_schema = {
        "kind": "multi_label",
        "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}],
    }
    project.save()

    with pytest.raises(ValidationFailed, match="single-choice") as raised:
        analysis_compute(project=project, filters={})

    assert raised.value.code == "unsupported_schema"
    assert not AgreementAnalysis.objects.filter(project=project).exists()


def test_analysis_compute_one_annotator_done_with_not_enough_labels_message():
    project = make_open_project(3, k=2)
    label_everything(project, [make_enrolled_annotator(project)], lambda a, i: HATE[i % 3])

    analysis = analysis_compute(project=project, filters={})

    assert analysis.status == AgreementAnalysis.Status.DONE
    assert analysis.summary["enough_data"] is False
    assert analysis.summary["message"] == NOT_ENOUGH_LABELS
    assert analysis.summary["alpha"] is None
    assert analysis.summary["n_labels"] == 3
    assert ItemDisagreement.objects.filter(analysis=analysis, ds_label__isnull=True).count() == 3


def test_analysis_compute_no_labels_done_with_empty_summary():
    project = make_open_project(3)

    analysis = analysis_compute(project=project, filters={})

    assert analysis.status == AgreementAnalysis.Status.DONE
    assert analysis.summary["n_labels"] == 0
    assert analysis.summary["enough_data"] is False
    assert analysis.annotators == []


def test_analysis_compute_error_stored_as_failed_never_left_running(labelled, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("labels are odd")

    monkeypatch.setattr(analysis_module, "krippendorff_alpha", broken)

    analysis = analysis_compute(project=labelled.project, filters={})

    assert analysis.status == AgreementAnalysis.Status.FAILED
    assert "labels are odd" in analysis.error
    assert AgreementAnalysis.objects.get(pk=analysis.pk).status == AgreementAnalysis.Status.FAILED


def test_analysis_compute_unexpected_error_message_hides_internals(labelled, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("secret internal detail")

    monkeypatch.setattr(analysis_module, "dawid_skene", broken)

    analysis = analysis_compute(project=labelled.project, filters={})

    assert analysis.status == AgreementAnalysis.Status.FAILED
    assert "secret" not in analysis.error
    assert "unexpectedly" in analysis.error


def test_analysis_compute_rerun_replaces_item_rows(labelled):
    first = analysis_compute(project=labelled.project, filters={})
    again = analysis_compute(project=labelled.project, filters={})

    assert first.pk == again.pk
    assert ItemDisagreement.objects.filter(analysis=again).count() == 6
    assert AgreementAnalysis.objects.filter(project=labelled.project).count() == 1


def test_analysis_filters_clean_canonical_and_refuses_bad_input(labelled):
    project = labelled.project

    clean = analysis_filters_clean(
        project=project, filters={"since": "2024-01-02", "until": "", "question": "age_group"}
    )

    assert clean == {"since": "2024-01-02", "question": "age_group"}
    assert analysis_filters_key(clean) == analysis_filters_key(dict(reversed(clean.items())))
    for bad in (
        {"since": "yesterday"},
        {"since": "2024-02-01", "until": "2024-01-01"},
        {"question": "not_a_question"},
        {"annotator__password": "x"},
    ):
        with pytest.raises(ValidationFailed):
            analysis_filters_clean(project=project, filters=bad)


def _stored_rows() -> list[tuple]:
    """Every analysis row and per-item row as stored, to prove that a read wrote nothing."""
    return [
        *AgreementAnalysis.objects.order_by("pk").values_list(
            "pk", "status", "fingerprint", "updated_at", "computed_at", "summary", "figures"
        ),
        *ItemDisagreement.objects.order_by("pk").values_list("pk", "analysis_id", "entropy"),
    ]


def test_analysis_compute_stores_figures_for_entropy_and_done_groups(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    figures = AgreementAnalysis.objects.get(pk=analysis.pk).figures
    assert figures["entropy"].startswith("<svg")
    # Only the question whose comparison is done has plots; the skipped ones have none.
    assert set(figures["groups"]) == {"age_group"}
    for kind in ("distribution", "heatmap"):
        svg = figures["groups"]["age_group"][kind]
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "Prefer not to say" in svg


def test_analysis_get_before_first_computation_stale_none_and_nothing_stored(labelled):
    read = analysis_get(project=labelled.project, filters={})

    assert read.analysis is None
    assert read.stale and read.needs_refresh and not read.in_progress
    assert not AgreementAnalysis.objects.exists()


def test_analysis_get_fresh_not_stale_in_few_queries(labelled, django_assert_max_num_queries):
    analysis_compute(project=labelled.project, filters={})

    with django_assert_max_num_queries(3):
        read = analysis_get(project=labelled.project, filters={})

    assert read.analysis is not None and not read.stale and not read.needs_refresh


def test_analysis_get_stale_returned_as_stored_nothing_written(labelled, compute_calls):
    first = analysis_compute(project=labelled.project, filters={})
    annotator = labelled.annotators[1]
    annotation = Annotation.objects.filter(annotator=annotator).order_by("pk")[0]
    other_value = next(value for value in HATE if value != annotation.value)
    annotation_update(
        annotation=annotation, annotator=annotator, value=other_value, confidence=None
    )
    before = _stored_rows()

    read = analysis_get(project=labelled.project, filters={}, with_figures=True)

    assert _stored_rows() == before
    assert compute_calls == [first.pk]
    assert read.stale and read.needs_refresh
    assert read.analysis is not None
    assert read.analysis.summary == first.summary
    assert read.analysis.computed_at == first.computed_at


def test_analysis_get_edit_withdrawal_or_survey_change_makes_stale(labelled):
    analysis_compute(project=labelled.project, filters={})
    annotator = labelled.annotators[1]
    annotation = Annotation.objects.filter(annotator=annotator).order_by("pk")[0]
    enrolment = Enrolment.objects.get(project=labelled.project, annotator=annotator)
    other_value = next(value for value in HATE if value != annotation.value)
    changes = [
        lambda: annotation_update(
            annotation=annotation, annotator=annotator, value=other_value, confidence=None
        ),
        lambda: enrolment_survey_submit(enrolment=enrolment, answers={"age_group": "55+"}),
        lambda: enrolment_withdraw(enrolment=enrolment, actor=annotator),
    ]

    for change in changes:
        change()
        assert analysis_get(project=labelled.project, filters={}).stale
        analysis_refresh(project=labelled.project, filters={})
        assert not analysis_get(project=labelled.project, filters={}).stale

    refreshed = analysis_get(project=labelled.project, filters={}).analysis
    assert refreshed is not None and refreshed.summary["n_annotators"] == 3


def test_analysis_get_queued_in_progress_not_stale_and_no_refresh_offered(
    labelled, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(agreement_analysis_task, "apply_async", lambda args, **options: None)
    with django_capture_on_commit_callbacks(execute=True):
        analysis_refresh(project=labelled.project, filters={}, inline_limit=10)

    read = analysis_get(project=labelled.project, filters={})

    assert read.in_progress and not read.stale and not read.needs_refresh


def test_analysis_refresh_fresh_not_recomputed(labelled, compute_calls):
    first = analysis_refresh(project=labelled.project, filters={})
    second = analysis_refresh(project=labelled.project, filters={})

    assert compute_calls == [first.pk]
    assert second.pk == first.pk
    assert second.status == AgreementAnalysis.Status.DONE


def test_analysis_refresh_new_labels_stale_recomputed(compute_calls):
    data = make_labelled_project(n_items=4, n_annotators=3, k=4)
    first = analysis_refresh(project=data.project, filters={})
    newcomer = make_enrolled_annotator(data.project)
    label_everything(data.project, [newcomer], lambda a, i: "hateful")

    refreshed = analysis_refresh(project=data.project, filters={})

    assert len(compute_calls) == 2
    assert refreshed.summary["n_labels"] == first.summary["n_labels"] + 4
    assert refreshed.fingerprint != first.fingerprint


def test_analysis_refresh_stale_stores_new_figures(labelled):
    first = analysis_compute(project=labelled.project, filters={})
    assert "55+" not in first.figures["groups"]["age_group"]["distribution"]
    annotator = labelled.annotators[3]  # answered "prefer not to say"
    enrolment = Enrolment.objects.get(project=labelled.project, annotator=annotator)
    enrolment_survey_submit(enrolment=enrolment, answers={"age_group": "55+"})

    analysis_refresh(project=labelled.project, filters={})

    figures = AgreementAnalysis.objects.get(pk=first.pk).figures
    assert "55+" in figures["groups"]["age_group"]["distribution"]
    assert "55+" in figures["groups"]["age_group"]["heatmap"]
    assert figures["entropy"].startswith("<svg")


def test_analysis_refresh_failed_result_retried(labelled, compute_calls, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("labels are odd")

    with monkeypatch.context() as patch:
        patch.setattr(analysis_module, "krippendorff_alpha", broken)
        failed = analysis_refresh(project=labelled.project, filters={})
    assert failed.status == AgreementAnalysis.Status.FAILED

    retried = analysis_refresh(project=labelled.project, filters={})

    assert retried.status == AgreementAnalysis.Status.DONE
    assert len(compute_calls) == 2


def test_analysis_refresh_large_marks_pending_and_enqueues_on_commit(
    labelled, compute_calls, django_capture_on_commit_callbacks, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr(
        agreement_analysis_task, "apply_async", lambda args, **options: queued.append(args[0])
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        analysis = analysis_refresh(project=labelled.project, filters={}, inline_limit=10)

    assert analysis.status == AgreementAnalysis.Status.PENDING
    assert len(callbacks) == 1
    assert queued == [analysis.pk]
    assert compute_calls == []
    # Asked again while queued: no second task, no inline computation.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = analysis_refresh(project=labelled.project, filters={}, inline_limit=10)
    assert again.status == AgreementAnalysis.Status.PENDING
    assert callbacks == []


def test_analysis_refresh_row_claimed_elsewhere_meanwhile_not_computed_twice(
    labelled, compute_calls, monkeypatch
):
    """Two refreshes at once: the one that loses the conditional UPDATE computes nothing."""
    stale = analysis_compute(project=labelled.project, filters={})
    AgreementAnalysis.objects.filter(pk=stale.pk).update(fingerprint="")
    original = analysis_module.analysis_label_state

    def claimed_by_another_request(**kwargs):
        AgreementAnalysis.objects.filter(pk=stale.pk).update(
            status=AgreementAnalysis.Status.RUNNING,
            lease_owner="another-request",
            lease_expires_at=timezone.now() + timedelta(minutes=5),
        )
        return original(**kwargs)

    monkeypatch.setattr(analysis_module, "analysis_label_state", claimed_by_another_request)

    returned = analysis_refresh(project=labelled.project, filters={})

    assert returned.status == AgreementAnalysis.Status.RUNNING
    assert compute_calls == [stale.pk]


def test_analysis_refresh_large_task_runs_in_process_without_broker(
    labelled, django_capture_on_commit_callbacks, settings
):
    settings.CHORUS_ANALYSIS_INLINE_LIMIT = 10

    with django_capture_on_commit_callbacks(execute=True):
        analysis_refresh(project=labelled.project, filters={})

    stored = AgreementAnalysis.objects.get(project=labelled.project)
    assert stored.status == AgreementAnalysis.Status.DONE
    assert stored.summary["n_labels"] == 24
    assert stored.figures["entropy"].startswith("<svg")


def test_analysis_refresh_abandoned_running_recomputed(labelled, compute_calls):
    analysis = analysis_compute(project=labelled.project, filters={})
    AgreementAnalysis.objects.filter(pk=analysis.pk).update(
        status=AgreementAnalysis.Status.RUNNING, updated_at=timezone.now() - timedelta(hours=2)
    )
    assert analysis_get(project=labelled.project, filters={}).needs_refresh

    refreshed = analysis_refresh(project=labelled.project, filters={})

    assert refreshed.status == AgreementAnalysis.Status.DONE
    assert len(compute_calls) == 2


def test_agreement_analysis_task_twice_second_run_is_a_no_op(labelled, compute_calls):
    analysis = AgreementAnalysis.objects.create(
        project=labelled.project, filters={}, filters_key=analysis_filters_key({})
    )

    first = agreement_analysis_task.delay(analysis.pk).get()
    second = agreement_analysis_task.delay(analysis.pk).get()

    assert (first, second) == ("done", "done")
    assert compute_calls == [analysis.pk]


def test_analysis_job_held_by_a_live_lease_is_left_alone_missing_is_a_no_op(
    labelled, compute_calls
):
    analysis = AgreementAnalysis.objects.create(
        project=labelled.project,
        filters={},
        filters_key=analysis_filters_key({}),
        status=AgreementAnalysis.Status.RUNNING,
        lease_owner="another-worker",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )

    assert job_run_here(AgreementAnalysis, analysis.pk) == "held"
    assert AgreementAnalysis.objects.get(pk=analysis.pk).status == AgreementAnalysis.Status.RUNNING
    assert job_run_here(AgreementAnalysis, analysis.pk + 1000) == "deleted"
    assert compute_calls == []


def test_item_disagreement_list_ordering_allowlist_only(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    entropies = list(
        item_disagreement_list(analysis=analysis, ordering="-entropy").values_list(
            "entropy", flat=True
        )
    )

    assert entropies == sorted(entropies, reverse=True)
    for bad in ("annotator__password", "item__project__owner__password", "id; DROP"):
        with pytest.raises(ValidationFailed) as raised:
            item_disagreement_list(analysis=analysis, ordering=bad)
        assert raised.value.code == "invalid_ordering"


def test_item_disagreement_table_one_column_per_category(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    header, lazy_rows = item_disagreement_table(analysis=analysis, categories=list(HATE))
    rows = list(lazy_rows)

    assert header[:3] == ["item", "external_id", "n_labels"]
    assert "p_hateful" in header and "ds_p_neither" in header
    assert len(rows) == 6
    assert all(len(row) == len(header) for row in rows)


def test_analysis_group_result_unknown_question_not_found(labelled):
    analysis = analysis_compute(project=labelled.project, filters={})

    assert (
        analysis_group_result(project=labelled.project, analysis=analysis, question="age_group")[
            "status"
        ]
        == "done"
    )
    with pytest.raises(NotFound):
        analysis_group_result(project=labelled.project, analysis=analysis, question="nope")


def test_services_module_never_imports_the_pandas_side():
    from tests.test_architecture import REPO_ROOT, collect_imports

    modules = sorted((REPO_ROOT / "annotation" / "services").glob("*.py"))
    targets = {found.target for path in modules for found in collect_imports(path)}

    assert not {
        target
        for target in targets
        if target.startswith(("annotation.analysis", "pandas", "matplotlib"))
    }
