"""editflow-models."""
