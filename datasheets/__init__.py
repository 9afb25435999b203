"""Dataset documentation and audit reports (later issues). Wired, empty for now."""
