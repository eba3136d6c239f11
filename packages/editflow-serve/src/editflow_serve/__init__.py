"""editflow-serve."""
