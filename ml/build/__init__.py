"""Building a dataset version: the work of its job (``ml.tasks``).

Read (``collect``), aggregate (``aggregate``, by ``annotation.agreement``), cluster
near-duplicates (``contamination``), split (``ml.engine.splits``), write the bundle into
a temporary local directory (``bundle``), upload it under a storage prefix of this
attempt's own, then publish in one transaction: the version's number, manifest, counts
and status flip together, and only while this run holds the job's lease. A worker killed
half way leaves no published partial version; the files of an abandoned attempt belong
to no version and are deleted by the sweeper (``dataset_files_sweep``).

Modules: ``collect`` (read, policies), ``aggregate`` (targets), ``contamination``
(near-duplicate clusters), ``bundle`` (files), ``archive`` (the zip stream), ``run`` (the
build itself, ``dataset_version_execute``, and the sweeper of abandoned attempts). Nothing
is imported here: the web process imports ``archive`` alone, without pandas.
"""
