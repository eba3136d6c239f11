"""editflow-serve: an OpenAI-compatible server for Edit Flow models.

``create_app(engine, settings)`` builds the FastAPI app around any ``EngineClient``; ``Engine``
runs step-level continuous batching in a background thread; ``ServeSettings`` holds every flag
of ``editflow-serve`` (``cli.main``), which launches it.
"""

import editflow_models  # noqa: F401  (first: its quiet start-up filters, see editflow_models.quiet)

from .app import create_app
from .engine import Engine
from .engine_client import EngineClient, EngineError, QueueFull, SeqRequest
from .errors import APIError
from .metrics import Metrics
from .serving import OpenAIServing
from .settings import ServeSettings

__all__ = [
    "APIError",
    "Engine",
    "EngineClient",
    "EngineError",
    "Metrics",
    "OpenAIServing",
    "QueueFull",
    "SeqRequest",
    "ServeSettings",
    "create_app",
]
