"""The pure engine of dataset versions: splits, the contamination guard, bundle files.

The names exported here need numpy, pandas, pyarrow and datasketch only; nothing under
``ml.engine`` imports Django, Celery or DRF (an import-linter contract and
``tests/test_architecture.py`` hold it), so it is tested and benchmarked alone.
``ml.build`` feeds it a version's items and stores what it returns.

- ``splits``: ``assign_splits`` puts items into train / validation / test in units that
  never straddle splits (groups of the grouped strategy, duplicate clusters always),
  random or stratified by label, with counts within one unit of the ratios.
- ``neardup``: duplicate clusters from content hashes (``exact``), normalised text and
  MinHash LSH on character shingles (``text``) and perceptual-hash distance (``image``),
  merged by union-find into a ``ClusterReport``; ``clusters_crossing`` checks a split
  against them, ``cross_matches`` checks one version's test split against another's train.
- ``files``: Parquet, JSON Lines and CSV written byte-identically for identical rows (no
  writer version, no time), CSV cells defused against formula injection, and the sha256
  manifest entries.

Imported from their own modules, not exported here: ``encoders`` (sentence encoders,
loaded from local files only, sentence-transformers imported on first load, and the
embedding cache), ``training`` (torch: baseline classifiers trained on a bundle,
``training.pipeline.run_baseline``) and ``evaluation`` (metrics, per-group tables, plots);
their docstrings state their invariants.

Invariants throughout: results depend on the set of input rows and the parameters only
(never on row order, process hash seeds or the clock); a cluster or unit is named by its
smallest item id; bad input raises ``ValueError``; empty input gives an empty result.

Names load with their module on first use (``__getattr__``), so importing ``ml.engine``
costs nothing, and datasketch (with scipy) loads only when texts are clustered.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.engine.files import (
        NEUTRAL_CREATED_BY,
        FileEntry,
        file_entry,
        sha256_file,
        write_csv,
        write_jsonl,
        write_parquet,
    )
    from ml.engine.neardup import (
        REASONS,
        ClusterCrossing,
        ClusterReport,
        DuplicateCluster,
        Match,
        clusters_crossing,
        cross_matches,
        cross_version_matches,
        exact_clusters,
        find_clusters,
        image_clusters,
        lsh_bands,
        merge_clusters,
        normalise_text,
        normalised_sha256,
        text_clusters,
    )
    from ml.engine.splits import (
        SPLITS,
        STRATEGIES,
        SplitSpec,
        assign_splits,
        split_report,
        split_units,
    )

_LAZY = {
    "NEUTRAL_CREATED_BY": "files",
    "FileEntry": "files",
    "file_entry": "files",
    "sha256_file": "files",
    "write_csv": "files",
    "write_jsonl": "files",
    "write_parquet": "files",
    "REASONS": "neardup",
    "ClusterCrossing": "neardup",
    "ClusterReport": "neardup",
    "DuplicateCluster": "neardup",
    "Match": "neardup",
    "clusters_crossing": "neardup",
    "cross_matches": "neardup",
    "cross_version_matches": "neardup",
    "exact_clusters": "neardup",
    "find_clusters": "neardup",
    "image_clusters": "neardup",
    "lsh_bands": "neardup",
    "merge_clusters": "neardup",
    "normalise_text": "neardup",
    "normalised_sha256": "neardup",
    "text_clusters": "neardup",
    "SPLITS": "splits",
    "STRATEGIES": "splits",
    "SplitSpec": "splits",
    "assign_splits": "splits",
    "split_report": "splits",
    "split_units": "splits",
}

__all__ = [
    "ClusterCrossing",
    "ClusterReport",
    "DuplicateCluster",
    "FileEntry",
    "Match",
    "NEUTRAL_CREATED_BY",
    "REASONS",
    "SPLITS",
    "STRATEGIES",
    "SplitSpec",
    "assign_splits",
    "clusters_crossing",
    "cross_matches",
    "cross_version_matches",
    "exact_clusters",
    "file_entry",
    "find_clusters",
    "image_clusters",
    "lsh_bands",
    "merge_clusters",
    "normalise_text",
    "normalised_sha256",
    "sha256_file",
    "split_report",
    "split_units",
    "text_clusters",
    "write_csv",
    "write_jsonl",
    "write_parquet",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
