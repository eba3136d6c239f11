"""editflow-core."""
