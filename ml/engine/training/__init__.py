"""The pure training engine of baseline classifiers: torch, numpy, pandas, Pillow; no Django,
Celery or DRF (import-linter holds it), so a run is tested and benchmarked alone.

- ``config``: ``TrainConfig`` (hyperparameters, valid once built) and ``resolve_device``.
- ``data``: ``examples_from_bundle`` reads a split of a dataset version's bundle into
  ``Examples`` for a target of ``TARGETS`` (majority, Dawid-Skene, or the annotators' soft
  distribution).
- ``loop``: ``fit`` (soft cross-entropy, AdamW, early stopping with the best epoch
  restored, bf16 autocast and pinned memory on CUDA, ``Progress`` per batch, ``Cancelled``
  on request), ``predict_proba``, the ``TensorSource`` protocol and ``TensorPairs``.
- ``text``: the linear or MLP head on frozen sentence embeddings (``ml.engine.encoders``).
- ``image`` and ``augment``: the small CNN or frozen TorchScript backbone, ``ImageSource``
  and seeded Pillow/torch augmentation.
- ``weights``: ``save_weights`` (atomic, returns the sha256) and ``load_weights`` (hash
  checked first, ``torch.load(weights_only=True)``), ``WeightsTampered``.
- ``pipeline``: ``run_baseline``, bundle in, artefacts out; what the Django side calls.

Invariants throughout: every random draw comes from the run's seed (same seed, data and
device give the same history and weights); bad input raises ``ValueError`` with a message
a researcher can act on; nothing touches the network (encoders load local files only).
Nothing is imported here, so importing one module loads only what it needs; torch is
imported at the top of these modules, sentence-transformers only inside the functions that
load an encoder.
"""
