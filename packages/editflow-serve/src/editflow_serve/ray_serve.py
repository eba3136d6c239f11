"""Replicas on Ray Serve: the same FastAPI app, one engine (its own batch) per replica.

``editflow-serve --replicas N`` (or ``--min-replicas A --max-replicas B`` to autoscale) runs the
app as a Ray Serve deployment instead of one uvicorn process; it needs the ``ray`` extra
(``uv run --extra ray editflow-serve ...`` in the workspace, ``pip install
'editflow-serve[ray]'`` elsewhere).

Design decisions:
- Each replica builds the app with ``cli.build`` from the same ``ServeSettings``, so the API, its
  checks, the key and the metrics are those of the single-process server; it loads the model
  and waits for it before Ray counts the replica as running, so no request meets a loading
  engine.
- Ray's proxy spreads requests over replicas and queues them while every replica is busy:
  a replica holds at most ``--max-running`` requests (``max_ongoing_requests``), the rest wait
  in Ray's queue (at most ``--max-queued``, then 503), so a replica that dies takes only the
  requests it was running with it; the waiting ones go to the replicas that are left.
- A replica whose engine faulted fails Ray's health check and is replaced; a replica that dies
  is replaced by Ray. The requests it was running get a 500 from Ray's proxy (plain text
  "Internal Server Error", not the OpenAI envelope: the proxy, not the app, answers them).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any

from .settings import ServeSettings

# every node runs the installed package: no upload of the working tree (under `uv run` Ray would
# ship it to the workers); read when ray is imported
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

try:
    from ray import serve
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "replicas need Ray Serve: install the extra (uv run --extra ray editflow-serve ..., "
        "or pip install 'editflow-serve[ray]')"
    ) from e

DEPLOYMENT = "editflow"


@serve.ingress()
class EditFlowReplica:
    """One replica: the app of ``cli.build(settings)`` with its own engine."""

    def __init__(self, settings: ServeSettings) -> None:
        from .cli import build

        self._app, self.engine = build(settings)
        self.engine.start()  # the app's lifespan starts it again: a no-op
        if not self.engine.wait_ready():
            raise RuntimeError(f"the model did not load: {self.engine.error}")

    def __serve_build_asgi_app__(self) -> Any:
        return self._app

    def check_health(self) -> None:
        """Ray calls this periodically; raising makes Ray replace the replica."""
        if self.engine.state == "fault":
            raise RuntimeError(f"engine fault: {self.engine.error}")


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """``serve.deployment`` options for the flags: fixed replicas, or autoscaling."""
    opts: dict[str, Any] = {
        "name": DEPLOYMENT,
        "max_ongoing_requests": settings.max_running,
        "max_queued_requests": settings.max_queued,
        "ray_actor_options": {
            "num_cpus": settings.replica_cpus,
            "num_gpus": 1 if settings.device.startswith("cuda") else 0,
        },
        "health_check_period_s": 2.0,
        "graceful_shutdown_timeout_s": settings.drain_timeout,
    }
    if settings.max_replicas:
        opts["autoscaling_config"] = {
            "min_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": max(1, settings.max_running),
        }
    else:
        opts["num_replicas"] = settings.replicas
    return opts


def serve_app(settings: ServeSettings) -> Any:
    """The bound Ray Serve application for the settings (the model path resolved here)."""
    from .cli import resolve_model

    settings = dataclasses.replace(settings, model=str(resolve_model(settings.model).resolve()))
    return serve.deployment(EditFlowReplica, **deployment_options(settings)).bind(settings)


def run(settings: ServeSettings) -> None:
    """Start Ray (or join ``RAY_ADDRESS``'s cluster), deploy, and serve until interrupted."""
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(serve_app(settings), name=DEPLOYMENT, route_prefix="/")
    print(
        f"editflow-serve: {DEPLOYMENT} on http://{settings.host}:{settings.port} (Ray Serve)",
        flush=True,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM shuts down as Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()  # drains: replicas get graceful_shutdown_timeout_s (--drain-timeout)
        ray.shutdown()
