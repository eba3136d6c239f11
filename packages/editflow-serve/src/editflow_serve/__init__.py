"""editflow-serve: an OpenAI-compatible server for Edit Flow models.

``create_app(engine, settings)`` builds the FastAPI app; ``Engine`` runs step-level continuous
batching in a background thread; ``editflow-serve`` (``cli.main``) launches it.
"""

import editflow_models  # noqa: F401  (first: its quiet start-up filters, see editflow_models.quiet)

from .app import create_app
from .engine import Engine, EngineError, QueueFull, SeqRequest, load_model
from .metrics import Metrics
from .serving import APIError, OpenAIServing, ServeSettings

__all__ = [
    "APIError",
    "Engine",
    "EngineError",
    "Metrics",
    "OpenAIServing",
    "QueueFull",
    "SeqRequest",
    "ServeSettings",
    "create_app",
    "load_model",
]
