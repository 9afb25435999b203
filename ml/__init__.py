"""Dataset versions (exports, splits, contamination checks); training runs and bias probes
come later. ``ml.engine`` is the pure part (numpy, pandas, pyarrow; no Django)."""
