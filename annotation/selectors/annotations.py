"""Annotation reads: labels as each role may see them.

Annotators see their own labels only (withdrawn ones included: they are theirs);
researchers and auditors every label not withdrawn; every analysis and export reads
``annotations_for_analysis``, which never includes a withdrawn label.
"""

from django.db.models import QuerySet

from annotation.models import Annotation, Project
from core.errors import NotFound
from core.models import User


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
