"""``editflow-serve``: serve an Edit Flow checkpoint over the OpenAI API.

Flags may come from a YAML file (``--config configs/serve/quickstart.yaml``, keys are the flag
names with underscores); flags given on the command line win. SIGTERM / Ctrl-C drain: no new
requests (503), running ones finish within ``--drain-timeout`` seconds, then the process exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .settings import DEFAULT_MODEL, ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .engine import Engine

NO_MODEL = f"""no model to serve: --model was not given and {DEFAULT_MODEL} does not exist.
Train the quickstart model:   uv run editflow-train pt --config configs/pt/quickstart.yaml
or convert a pretrained one:  uv run editflow convert --model SRC --output DIR
then: uv run editflow-serve --model DIR"""


def _scalar(hint: Any) -> Any:
    """The argparse type of a field's annotation: int for ``int | None``, str for ``str``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        [hint] = [h for h in typing.get_args(hint) if h is not type(None)]
    return hint


def build_parser() -> argparse.ArgumentParser:
    """One ``--flag`` per ``ServeSettings`` field (default and help from there), and --config."""
    p = argparse.ArgumentParser("editflow-serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file with flag values (command-line flags override it)")
    defaults = ServeSettings()  # now: the sampling defaults are read from SamplingParams
    hints = typing.get_type_hints(ServeSettings)
    for f in dataclasses.fields(ServeSettings):
        kw = dict(f.metadata)
        kw.setdefault("type", _scalar(hints[f.name]))
        p.add_argument("--" + f.name.replace("_", "-"), default=getattr(defaults, f.name), **kw)
    return p


def parse_args(argv: list[str] | None = None) -> ServeSettings:
    """The settings from flags, with defaults taken from ``--config`` YAML when given.

    The API key falls back to the environment variable ``EDITFLOW_API_KEY``.
    """
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        data = yaml.safe_load(Path(pre.config).read_text()) or {}
        known = {a.dest for a in parser._actions}
        bad = sorted(k for k in data if k.replace("-", "_") not in known or k == "config")
        if bad:
            parser.error(f"{pre.config}: unknown keys {bad}")
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in data.items()})
    args = vars(parser.parse_args(argv))
    del args["config"]
    s = ServeSettings(**args)
    if s.replicas < 0 or s.max_replicas < 0 or not 0 < s.min_replicas:
        parser.error("--replicas, --max-replicas must be >= 0 and --min-replicas >= 1")
    if s.max_replicas and (s.replicas or s.min_replicas > s.max_replicas):
        parser.error("give --replicas or --min/--max-replicas, with min <= max")
    if s.max_tokens_per_forward is not None and s.max_tokens_per_forward < 0:
        parser.error(f"--max-tokens-per-forward must be >= 0, got {s.max_tokens_per_forward}")
    s.api_key = s.api_key or os.environ.get("EDITFLOW_API_KEY")
    return s


def resolve_model(model: str | None) -> Path:
    """The checkpoint folder to serve; exits with instructions when there is none."""
    if model is None:
        if not Path(DEFAULT_MODEL).is_dir():
            sys.exit(NO_MODEL)
        model = DEFAULT_MODEL
    path = Path(model)
    if not (path / "config.json").is_file():
        sys.exit(f"{path} is not a model folder (no config.json)\n\n{NO_MODEL}")
    return path


def build(settings: ServeSettings) -> tuple[FastAPI, Engine]:
    """The app and its engine for ``settings`` (the model folder resolved first)."""
    from editflow_models import load_generation_setup

    from .app import create_app
    from .engine import Engine
    from .metrics import Metrics

    path = resolve_model(settings.model)
    settings = dataclasses.replace(settings, model=str(path))
    metrics = Metrics()
    engine = Engine(
        lambda: load_generation_setup(path, settings.device, settings.dtype),
        max_running=settings.max_running,
        max_queued=settings.max_queued,
        device=settings.device,
        metrics=metrics,
        torch_threads=settings.torch_threads,
        max_tokens_per_forward=settings.max_tokens_per_forward,
    )
    return create_app(engine, settings, metrics=metrics), engine


def main(argv: list[str] | None = None) -> None:
    """The ``editflow-serve`` command: parse the flags, build the app, serve it with uvicorn."""
    import uvicorn

    from .http_protocol import uvicorn_config
    from .request_id import RequestIdFilter

    settings = parse_args(argv)
    if settings.replicas or settings.max_replicas:
        from .ray_serve import run

        return run(settings)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())  # the id of the request being served, or "-"
    app, engine = build(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            engine.drain()  # /health 503 and new requests 503 from now on
            if sig == signal.SIGTERM:
                self.should_exit = True  # drain, then exit 0 (uvicorn would re-raise SIGTERM)
            else:
                super().handle_exit(sig, frame)

    config = uvicorn_config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.drain_timeout,
    )
    Server(config).run()


if __name__ == "__main__":
    main()
