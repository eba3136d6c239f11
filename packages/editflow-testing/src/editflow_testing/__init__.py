"""editflow-testing: fixtures for the workspace's tests and benchmarks (dev only).

``save_tiny_model`` saves a tiny random Edit Flow model and its tokenizer, made locally, so the
server and the CLI can be exercised end to end anywhere; ``make_tiny_tokenizer`` is that
tokenizer alone. No product package depends on this one.
"""

from .tiny import make_tiny_tokenizer, save_tiny_model

__all__ = ["make_tiny_tokenizer", "save_tiny_model"]
