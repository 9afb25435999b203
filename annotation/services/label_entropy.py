"""Per-item label entropy: the stored disagreement score "most contested first" orders by.

A module of its own because two services change labels and must refresh it: annotation
submit and edit (``annotations``) and withdrawal (``enrolment``). ``annotations`` imports
``enrolment`` for its labeling gate, so in ``annotations`` it would make an import cycle.

Invariant: once the transaction that changed an item's labels commits, the item's
``label_entropy`` is the normalised entropy of its current non-withdrawn labels.
"""

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from annotation.agreement.entropy import normalized_entropy
from annotation.models import Annotation, Item, Project
from annotation.schemas import LabelSchema


def _label_set_count(schema: LabelSchema) -> int:
    """How many answers a multi-label schema admits: every allowed number of ticked choices."""
    n = len(schema.values)
    most = n if schema.max_selected is None else min(schema.max_selected, n)
    return sum(math.comb(n, size) for size in range(schema.min_selected, most + 1))


def _label_entropy(values: Sequence[Any], schema: LabelSchema) -> float:
    """Normalised Shannon entropy of one item's labels, in [0, 1].

    ``H = -sum_c p_c ln p_c`` over the answers given, divided by ``ln K``. Single choice:
    the categories are the schema's choices. Multi-label: each distinct label set is one
    category and ``K`` is the number of sets the schema admits. Free text, and any item
    with fewer than two labels, has 0.
    """
    if schema.kind == "free_text" or len(values) < 2:
        return 0.0
    if schema.kind == "multi_label":
        answers = [json.dumps(sorted(value)) for value in values]
        n_categories = _label_set_count(schema)
    else:
        answers = [str(value) for value in values]
        n_categories = len(schema.values)
    return normalized_entropy(Counter(answers).values(), n_categories)


def _item_entropy_refresh(item_ids: Iterable[int]) -> None:
    """Recompute ``label_entropy`` from the items' current non-withdrawn labels.

    Call it in the transaction that changed the labels. The item rows are locked first (in
    id order), so concurrent label changes to one item are counted one after the other and
    the last writer sees every committed label.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return
    items = list(
        Item.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .only("pk", "project_id", "label_entropy")
    )
    schemas = {
        project.pk: LabelSchema.from_json(project.label_schema)
        for project in Project.objects.filter(pk__in={item.project_id for item in items})
    }
    values: dict[int, list[Any]] = defaultdict(list)
    for item_id, value in Annotation.objects.filter(item_id__in=ids, withdrawn=False).values_list(
        "item_id", "value"
    ):
        values[item_id].append(value)
    changed = []
    for item in items:
        entropy = _label_entropy(values[item.pk], schemas[item.project_id])
        if entropy != item.label_entropy:
            item.label_entropy = entropy
            changed.append(item)
    Item.objects.bulk_update(changed, ["label_entropy"])
