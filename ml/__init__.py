"""Dataset versions, training runs and bias probes (later issues). Wired, empty for now."""
