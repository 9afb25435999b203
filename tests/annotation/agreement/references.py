"""Plain-loop reference implementations, written from the papers' equations.

Slow and obvious on purpose: the tests compare the vectorised core against them where no
reference package computes the same thing (smoothed Dawid-Skene, leave-one-out majority,
cross-replication reliability).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import pandas as pd

FLOOR = 1e-10


@dataclass
class NaiveDawidSkene:
    posteriors: dict[Hashable, list[float]]
    priors: list[float]
    confusions: dict[Hashable, list[list[float]]]  # annotator -> [true][observed]
    log_likelihood: float


def _log_likelihood_and_posteriors(
    labels_of: dict[Hashable, list[tuple[Hashable, int]]],
    priors: Sequence[float],
    confusions: dict[Hashable, list[list[float]]],
) -> tuple[float, dict[Hashable, list[float]]]:
    total = 0.0
    posteriors = {}
    for item, labels in labels_of.items():
        logs = []
        for true in range(len(priors)):
            value = math.log(priors[true])
            for annotator, observed in labels:
                value += math.log(confusions[annotator][true][observed])
            logs.append(value)
        top = max(logs)
        weights = [math.exp(value - top) for value in logs]
        norm = sum(weights)
        total += top + math.log(norm)
        posteriors[item] = [weight / norm for weight in weights]
    return total, posteriors


def naive_dawid_skene(
    df: pd.DataFrame, categories: Sequence[Hashable], n_iter: int, smoothing: float = 0.0
) -> NaiveDawidSkene:
    """Dawid & Skene (1979) EM, eqs. 2.3-2.5, from the soft majority (eq. 3.1).

    Same schedule and floors as the core: initial posteriors -> M-step, then ``n_iter``
    times (E-step, M-step); the log-likelihood is taken at the final parameters.
    """
    position = {category: code for code, category in enumerate(categories)}
    n_categories = len(categories)
    labels_of: dict[Hashable, list[tuple[Hashable, int]]] = defaultdict(list)
    for item, annotator, label in df[["item", "annotator", "label"]].itertuples(index=False):
        labels_of[item].append((annotator, position[label]))
    annotators = list(
        dict.fromkeys(annotator for labels in labels_of.values() for annotator, _ in labels)
    )
    used = {
        (annotator, observed) for labels in labels_of.values() for annotator, observed in labels
    }

    posteriors = {}
    for item, labels in labels_of.items():
        counts = Counter(observed for _, observed in labels)
        posteriors[item] = [counts[c] / len(labels) for c in range(n_categories)]

    def m_step(posteriors):
        priors = [
            max(sum(p[c] for p in posteriors.values()) / len(posteriors), FLOOR)
            for c in range(n_categories)
        ]
        confusions = {}
        for annotator in annotators:
            rows = []
            for true in range(n_categories):
                cells = [smoothing] * n_categories
                for item, labels in labels_of.items():
                    for who, observed in labels:
                        if who == annotator:
                            cells[observed] += posteriors[item][true]
                for observed in range(n_categories):
                    if (annotator, observed) in used:
                        cells[observed] = max(cells[observed], FLOOR)
                norm = sum(cells)
                rows.append([cell / norm for cell in cells])
            confusions[annotator] = rows
        return priors, confusions

    priors, confusions = m_step(posteriors)
    for _ in range(n_iter):
        _, posteriors = _log_likelihood_and_posteriors(labels_of, priors, confusions)
        priors, confusions = m_step(posteriors)
    log_likelihood, _ = _log_likelihood_and_posteriors(labels_of, priors, confusions)
    return NaiveDawidSkene(posteriors, priors, confusions, log_likelihood)


def log_likelihood_of(
    df: pd.DataFrame,
    priors: dict[Hashable, float],
    confusion: dict[tuple[Hashable, Hashable, Hashable], float],
) -> float:
    """``sum_i log sum_c p_c prod_l e[annotator_l, true=c, observed=y_l]`` (natural log)."""
    categories = list(priors)
    total = 0.0
    for _, rows in df.groupby("item"):
        likelihood = 0.0
        for true in categories:
            term = priors[true]
            for annotator, label in rows[["annotator", "label"]].itertuples(index=False):
                term *= confusion[(annotator, true, label)]
            likelihood += term
        total += math.log(likelihood)
    return total


def leave_one_out_majority(df: pd.DataFrame) -> pd.DataFrame:
    """Per annotator: labels compared with the unique majority of the others, and matches."""
    compared: Counter[Hashable] = Counter()
    agreed: Counter[Hashable] = Counter()
    for _, rows in df.groupby("item"):
        for annotator, label in rows[["annotator", "label"]].itertuples(index=False):
            others = Counter(rows.loc[rows["annotator"] != annotator, "label"])
            if not others:
                continue
            ranked = others.most_common()
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue
            compared[annotator] += 1
            agreed[annotator] += ranked[0][0] == label
    annotators = sorted(df["annotator"].unique())
    return pd.DataFrame(
        {
            "n_compared": [compared[a] for a in annotators],
            "n_agreed": [agreed[a] for a in annotators],
        },
        index=annotators,
    )


def ordinal_distance(labels: Sequence[Hashable], categories: Sequence[Hashable]):
    """Krippendorff's ordinal delta^2 with the frequencies of ``labels``, as written in the paper.

    ``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2``, summing over the categories between c and k.
    """
    frequency = Counter(labels)
    position = {category: code for code, category in enumerate(categories)}

    def distance(a: Hashable, b: Hashable) -> float:
        low, high = sorted((position[a], position[b]))
        between = sum(frequency[categories[g]] for g in range(low, high + 1))
        return (between - (frequency[a] + frequency[b]) / 2) ** 2

    return distance


def cross_replication_reliability(
    first: pd.DataFrame,
    second: pd.DataFrame,
    distance=None,
    ordinal_categories: Sequence[Hashable] | None = None,
) -> float:
    """Wong, Paritosh & Aroyo (2021) xRR over the shared items, by enumerating label pairs.

    With ``ordinal_categories`` the distance is Krippendorff's ordinal metric over the
    pooled labels of both groups on the shared items.
    """
    shared = set(first["item"]) & set(second["item"])
    first = first[first["item"].isin(shared)]
    second = second[second["item"].isin(shared)]
    if ordinal_categories is not None:
        pooled = list(first["label"]) + list(second["label"])
        distance = ordinal_distance(pooled, ordinal_categories)
    observed = []
    for item in shared:
        for a in first.loc[first["item"] == item, "label"]:
            for b in second.loc[second["item"] == item, "label"]:
                observed.append(distance(a, b))
    expected = [distance(a, b) for a in first["label"] for b in second["label"]]
    if sum(expected) == 0:
        return math.nan
    return 1.0 - (sum(observed) / len(observed)) / (sum(expected) / len(expected))


@dataclass
class CrowdkitFit:
    """crowd-kit's DawidSkene estimates, with the confusion cells keyed like ours."""

    probas: pd.DataFrame
    priors: pd.Series
    labels: pd.Series
    confusion: dict[tuple[Hashable, Hashable, Hashable], float]  # (annotator, true, observed)


def crowdkit_dawid_skene(df: pd.DataFrame, n_iter: int) -> CrowdkitFit:
    """``crowdkit.aggregation.DawidSkene`` run for exactly ``n_iter`` iterations."""
    import warnings

    from crowdkit.aggregation import DawidSkene

    with warnings.catch_warnings():
        # crowd-kit 1.4.2 passes `inplace=` and `copy=` arguments pandas 3 deprecates.
        warnings.simplefilter("ignore")
        model = DawidSkene(n_iter=n_iter, tol=-math.inf).fit(
            df.rename(columns={"item": "task", "annotator": "worker"})
        )
    assert model.probas_ is not None and model.priors_ is not None
    assert model.errors_ is not None and model.labels_ is not None
    errors = model.errors_
    confusion = {
        (worker, true, observed): float(errors.loc[(worker, observed), true])
        for worker, observed in errors.index
        for true in errors.columns
    }
    return CrowdkitFit(model.probas_, model.priors_, model.labels_, confusion)
