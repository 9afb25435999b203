"""Agreement benchmark: the pure core against the reference packages, in the same run.

Usage::

    PYTHONPATH=. .venv/bin/python bench/agreement.py                 # 200k items
    PYTHONPATH=. .venv/bin/python bench/agreement.py --items 20000   # quick run

What it does:

1. Generates a seeded, realistic crowd: ``--items`` items, ``--labels-per-item`` labels each
   from distinct annotators out of ``--annotators`` (activity is skewed: a few annotators
   label much more than most), 4 ordinal classes. Each annotator has a bias and a noise
   level; 3% label at random; annotators belong to 4 self-reported age groups and the
   oldest group leans one third of a class higher.
2. Krippendorff's alpha, ordinal: ``annotation.agreement.krippendorff_alpha`` on the long
   frame against ``krippendorff.alpha(reliability_data=..., level_of_measurement="ordinal")``.
   The package takes an annotators x items matrix; building it from the long frame is its
   input preparation and is NOT timed: only the ``alpha`` call is. Our time includes
   validating and encoding the long frame. The package's faster ``value_counts`` input
   (items x values) is timed too and printed for reference, without a target.
3. Dawid-Skene: ``dawid_skene`` against ``crowdkit.aggregation.DawidSkene``, both for
   exactly ``--ds-iterations`` EM iterations (``tol=-inf``) from the same initialisation
   (soft majority vote).
4. ``group_disagreement`` at the ordinal level with ``--permutations`` permutations.

Each timing is the median of ``--repeats`` runs (the best is printed too); ratios use
medians. The values are compared and their largest absolute differences printed. Exit
status 0 when every target is met and every value agrees, 1 otherwise.
"""

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

CATEGORIES = (0, 1, 2, 3)
AGE_GROUPS = ("18-29", "30-44", "45-59", "60+")
# How much higher (in classes) the last age group labels than the others.
OLDEST_GROUP_SHIFT = 1 / 3
RANDOM_LABELLER_SHARE = 0.03
ALPHA_SPEEDUP_TARGET = 5.0
DS_SPEEDUP_TARGET = 3.0
GROUP_SECONDS_TARGET = 10.0
# Largest absolute differences accepted as "the same value".
ALPHA_TOLERANCE = 1e-9
DS_POSTERIOR_TOLERANCE = 1e-6
DS_LOG_LIKELIHOOD_TOLERANCE = 1e-6


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--annotators", type=int, default=2_000)
    parser.add_argument("--labels-per-item", type=int, default=5)
    parser.add_argument("--permutations", type=int, default=1_000)
    parser.add_argument("--ds-iterations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per measurement.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def generate(
    items: int, annotators: int, labels_per_item: int, seed: int
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Long label frame and annotator -> age group; the same for the same arguments."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, annotators)
    activity /= activity.sum()
    chosen = rng.choice(annotators, size=(items, labels_per_item), p=activity)
    # Redraw items that got an annotator twice, until every item has distinct annotators.
    while True:
        ordered = np.sort(chosen, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not repeated.any():
            break
        chosen[repeated] = rng.choice(
            annotators, size=(int(repeated.sum()), labels_per_item), p=activity
        )
    group = rng.integers(0, len(AGE_GROUPS), annotators)
    bias = rng.normal(0.0, 0.3, annotators) + np.where(
        group == len(AGE_GROUPS) - 1, OLDEST_GROUP_SHIFT, 0.0
    )
    noise = rng.uniform(0.4, 1.2, annotators)
    random_labeller = rng.random(annotators) < RANDOM_LABELLER_SHARE
    latent = rng.normal(0.0, 1.0, items)

    item = np.repeat(np.arange(items), labels_per_item)
    annotator = chosen.reshape(-1)
    score = 1.5 + 1.1 * latent[item] + bias[annotator]
    score += noise[annotator] * rng.normal(0.0, 1.0, len(item))
    label = np.clip(np.round(score), 0, len(CATEGORIES) - 1).astype(np.int64)
    label = np.where(random_labeller[annotator], rng.integers(0, len(CATEGORIES), len(item)), label)
    df = pd.DataFrame({"item": item, "annotator": annotator, "label": label})
    return df, {code: AGE_GROUPS[group[code]] for code in range(annotators)}


@dataclass
class Timing:
    median: float
    best: float
    result: Any


def measure(run: Callable[[], Any], repeats: int) -> Timing:
    seconds = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return Timing(statistics.median(seconds), min(seconds), result)


def crowdkit_log_likelihood(df: pd.DataFrame, priors: pd.Series, errors: pd.DataFrame) -> float:
    """Observed-data log-likelihood under crowd-kit's fitted priors_ and errors_."""
    classes = list(errors.columns)
    joined = df.join(np.log(errors), on=["worker", "label"])
    log_joint = joined.groupby("task")[classes].sum() + np.log(priors[classes].to_numpy())
    shift = log_joint.max(axis=1)
    return float((np.log(np.exp(log_joint.sub(shift, axis=0)).sum(axis=1)) + shift).sum())


@dataclass
class Row:
    name: str
    ours: float
    reference: float | None
    target: str
    met: bool

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.reference / self.ours


def time_krippendorff_package(df: pd.DataFrame, input_form: str, repeats: int) -> Timing:
    """Time ``krippendorff.alpha`` on ``reliability_data`` or ``value_counts``.

    Building either input from the long frame is the package's input preparation and is
    not timed. The reliability data matrix (annotators x items, NaN = no label) is freed on
    return: at 2,000 x 200,000 it takes 3.2 GB.
    """
    import krippendorff

    annotator_codes, annotators = pd.factorize(df["annotator"], sort=True)
    item_codes, items = pd.factorize(df["item"], sort=True)
    labels = df["label"].to_numpy()
    if input_form == "reliability_data":
        data = np.full((len(annotators), len(items)), np.nan)
        data[annotator_codes, item_codes] = labels
    else:
        data = np.zeros((len(items), len(CATEGORIES)))
        np.add.at(data, (item_codes, labels), 1)
    return measure(
        lambda: krippendorff.alpha(
            **{input_form: data},
            level_of_measurement="ordinal",
            value_domain=list(CATEGORIES),
        ),
        repeats,
    )


def bench_alpha(df: pd.DataFrame, repeats: int, lines: list[str]) -> tuple[Row, bool]:
    from annotation.agreement import krippendorff_alpha

    ours = measure(lambda: krippendorff_alpha(df, level="ordinal", categories=CATEGORIES), repeats)
    theirs = time_krippendorff_package(df, "reliability_data", repeats)
    theirs_counts = time_krippendorff_package(df, "value_counts", repeats)
    difference = abs(ours.result - theirs.result)
    difference_counts = abs(ours.result - theirs_counts.result)
    lines += [
        f"  alpha ordinal: ours {ours.result:.12f}, krippendorff {theirs.result:.12f}, "
        f"|diff| {difference:.1e} (value_counts input: |diff| {difference_counts:.1e})",
        f"  krippendorff.alpha on value_counts (items x values) instead of reliability data: "
        f"{theirs_counts.median:.3f} s median, ratio {theirs_counts.median / ours.median:.2f}x "
        "(reference only, no target)",
    ]
    ratio = theirs.median / ours.median
    row = Row(
        "krippendorff_alpha ordinal",
        ours.median,
        theirs.median,
        f">= {ALPHA_SPEEDUP_TARGET:g}x",
        ratio >= ALPHA_SPEEDUP_TARGET,
    )
    agrees = max(difference, difference_counts) <= ALPHA_TOLERANCE
    return row, agrees


def bench_dawid_skene(
    df: pd.DataFrame, iterations: int, repeats: int, lines: list[str]
) -> tuple[Row, bool]:
    from crowdkit.aggregation import DawidSkene

    from annotation.agreement import dawid_skene

    ours = measure(lambda: dawid_skene(df, max_iter=iterations, tol=-math.inf), repeats)
    crowd = df.rename(columns={"item": "task", "annotator": "worker"})
    with warnings.catch_warnings():
        # crowd-kit 1.4.2 passes `inplace=` / `copy=` arguments that pandas 3 deprecates.
        warnings.simplefilter("ignore")
        theirs = measure(lambda: DawidSkene(n_iter=iterations, tol=-math.inf).fit(crowd), repeats)
    result, model = ours.result, theirs.result
    probas = model.probas_.reindex(index=result.posteriors.index, columns=list(CATEGORIES))
    posterior_difference = float(np.abs(result.posteriors.to_numpy() - probas.to_numpy()).max())
    same_labels = float((result.labels == model.labels_.reindex(result.labels.index)).mean())
    their_log_likelihood = crowdkit_log_likelihood(crowd, model.priors_, model.errors_)
    log_likelihood_difference = abs(result.log_likelihood - their_log_likelihood)
    lines += [
        f"  dawid-skene: {result.n_iter} iterations each; max |posterior diff| "
        f"{posterior_difference:.1e}; same label on {same_labels:.4%} of items; "
        f"log-likelihood ours {result.log_likelihood:.6f}, crowd-kit's parameters "
        f"{their_log_likelihood:.6f}, |diff| {log_likelihood_difference:.1e}",
    ]
    ratio = theirs.median / ours.median
    row = Row(
        f"dawid_skene, {iterations} iterations",
        ours.median,
        theirs.median,
        f">= {DS_SPEEDUP_TARGET:g}x",
        ratio >= DS_SPEEDUP_TARGET,
    )
    agrees = (
        posterior_difference <= DS_POSTERIOR_TOLERANCE
        and log_likelihood_difference <= DS_LOG_LIKELIHOOD_TOLERANCE
    )
    return row, agrees


def bench_groups(
    df: pd.DataFrame,
    groups: dict[int, str],
    permutations: int,
    repeats: int,
    lines: list[str],
) -> tuple[Row, bool]:
    import krippendorff

    from annotation.agreement import group_disagreement

    timing = measure(
        lambda: group_disagreement(
            df, groups, level="ordinal", categories=CATEGORIES, n_permutations=permutations
        ),
        repeats,
    )
    result = timing.result
    differences = []
    for name, rows in df.groupby(df["annotator"].map(groups)):
        item_codes, _ = pd.factorize(rows["item"])
        value_counts = np.zeros((item_codes.max() + 1, len(CATEGORIES)))
        np.add.at(value_counts, (item_codes, rows["label"].to_numpy()), 1)
        reference = krippendorff.alpha(
            value_counts=value_counts, level_of_measurement="ordinal", value_domain=CATEGORIES
        )
        differences.append(abs(result.groups.loc[name, "alpha"] - reference))
    lines.append(
        f"  group_disagreement: within-group alpha vs krippendorff.alpha per group, "
        f"max |diff| {max(differences):.1e}"
    )
    table = result.pairs.to_string(index=False, float_format=lambda value: f"{value:.4f}")
    lines += ["  " + line for line in table.splitlines()]
    row = Row(
        f"group_disagreement, {permutations} permutations",
        timing.median,
        None,
        f"< {GROUP_SECONDS_TARGET:g} s",
        timing.median < GROUP_SECONDS_TARGET,
    )
    return row, max(differences) <= ALPHA_TOLERANCE


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if min(args.items, args.annotators, args.repeats) < 1 or args.permutations < 0:
        print("--items, --annotators and --repeats must be positive.", file=sys.stderr)
        return 2
    if not 2 <= args.labels_per_item <= args.annotators:
        print("--labels-per-item must be between 2 and --annotators.", file=sys.stderr)
        return 2
    print(
        f"Chorus agreement benchmark: Python {platform.python_version()}, numpy "
        f"{version('numpy')}, pandas {version('pandas')}, krippendorff {version('krippendorff')}, "
        f"crowd-kit {version('crowd-kit')}; {os.cpu_count()} CPUs on this machine"
    )
    started = time.perf_counter()
    df, groups = generate(args.items, args.annotators, args.labels_per_item, args.seed)
    print(
        f"data: {args.items} items x {args.labels_per_item} labels = {len(df)} labels from "
        f"{df['annotator'].nunique()} annotators, 4 ordinal classes, 4 groups, seed "
        f"{args.seed} (generated in {time.perf_counter() - started:.1f} s)"
    )
    print(f"timings: median of {args.repeats} runs each, measured in this run\n")

    lines: list[str] = []
    alpha_row, alpha_agrees = bench_alpha(df, args.repeats, lines)
    ds_row, ds_agrees = bench_dawid_skene(df, args.ds_iterations, args.repeats, lines)
    group_row, group_agrees = bench_groups(df, groups, args.permutations, args.repeats, lines)
    rows = [alpha_row, ds_row, group_row]

    header = f"{'measurement':<38}{'ours s':>9}{'reference s':>13}{'ratio':>9}  {'target':<9}met"
    print(header)
    print("-" * len(header))
    for row in rows:
        reference = "-" if row.reference is None else f"{row.reference:.3f}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.1f}x"
        print(
            f"{row.name:<38}{row.ours:>9.3f}{reference:>13}{ratio:>9}  {row.target:<9}"
            f"{'yes' if row.met else 'NO'}"
        )
    print(
        "\nreferences: krippendorff.alpha (reliability_data; building the matrix not timed), "
        "crowdkit DawidSkene (same iterations); group_disagreement has no reference "
        "implementation, its target is absolute."
    )
    print("\nValues:")
    for line in lines:
        print(line)
    agrees = alpha_agrees and ds_agrees and group_agrees
    print(f"\nValues agree: {'yes' if agrees else 'NO'}")
    return 0 if agrees and all(row.met for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
