"""Normalised Shannon entropy of one item's label counts: pure Python, no numpy or pandas.

The one formula for an item's disagreement, used where a single item's labels change
(the labeling services keep ``Item.label_entropy`` up to date on every submit) without
loading the vectorised statistics; ``reliability.item_entropy`` computes the same over a
whole label frame, and a test holds the two equal.
"""

import math
from collections.abc import Iterable


def normalized_entropy(counts: Iterable[int], n_categories: int) -> float:
    """``H = -sum_c p_c ln p_c`` over the categories given, divided by ``ln K``; in [0, 1].

    ``counts`` are the labels per category the item received (zeros allowed), ``K`` is
    ``n_categories``, the number of categories the item could receive. Fewer than two
    labels, or ``K < 2``, give 0.
    """
    given = [count for count in counts if count > 0]
    total = sum(given)
    if total < 2 or n_categories < 2:
        return 0.0
    entropy = -sum(count / total * math.log(count / total) for count in given)
    return max(0.0, entropy / math.log(n_categories))
