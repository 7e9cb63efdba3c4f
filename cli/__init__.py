"""The `reason-classifier` command: a thin layer that turns arguments into library calls."""
