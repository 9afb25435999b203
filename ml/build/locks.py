"""The advisory lock a build publishes under (numbering, and the last check that nobody
withdrew or took data down meanwhile), which the revocation receivers take too. A module
of its own: the receivers import it in every process, without pandas."""

NUMBER_LOCK = "ml.dataset-version-number"
