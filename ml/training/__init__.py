"""Training runs: baseline classifiers trained on dataset versions (issue 13).

The maths is in ``ml.engine.training`` and ``ml.engine.evaluation`` (pure torch, numpy,
pandas; no Django). This package is what Chorus adds around it:

- ``registry``: the text encoders (``CHORUS_TEXT_ENCODERS``) and image backbones
  (``CHORUS_IMAGE_BACKBONES``) a run may use, by key; models load from local paths only.
- ``params``: what a researcher may ask of a run, validated once into ``RunParams``
  (stored on the ``TrainingRun`` row in canonical form).
- ``run``: the job's work on a worker (``ml.tasks``, queue ``gpu``): fetch the version's
  bundle, train and evaluate through ``ml.engine.training.pipeline.run_baseline``, upload
  the artefacts under a prefix of this attempt's own and publish them with the run's
  outcome in one step while holding the job's lease.
"""
