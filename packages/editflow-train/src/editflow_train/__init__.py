"""editflow-train."""
