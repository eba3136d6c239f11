"""editflow command line."""
