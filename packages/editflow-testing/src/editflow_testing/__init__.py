"""editflow-testing: fixtures for the workspace's tests and benchmarks (dev only).

``save_tiny_model`` saves a tiny random Edit Flow model and its tokenizer, made locally, so the
server and the CLI can be exercised end to end anywhere; ``make_tiny_tokenizer`` is that
tokenizer alone. ``reference`` holds slow, obviously correct versions of the core math (the
tests' references, the benchmarks' baseline); ``toy_training`` the three-string toy language
and the tiny ``editflow-train`` config that learns it; ``toy_posterior`` the exact posterior
rates of a toy language, by enumeration, and an oracle model that returns them. No product
package depends on this one.
"""

from .tiny import make_tiny_tokenizer, save_tiny_model
from .toy_training import TOY_LANGUAGE, toy_config, write_toy_language

__all__ = [
    "TOY_LANGUAGE",
    "make_tiny_tokenizer",
    "save_tiny_model",
    "toy_config",
    "write_toy_language",
]
