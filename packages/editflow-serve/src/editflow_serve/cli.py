"""``editflow-serve``: serve an Edit Flow checkpoint over the OpenAI API.

Flags may come from a YAML file (``--config configs/serve/quickstart.yaml``, keys are the flag
names with underscores); flags given on the command line win. SIGTERM / Ctrl-C drain: no new
requests (503), running ones finish within ``--drain-timeout`` seconds, then the process exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODEL = "runs/quickstart/checkpoint-final"
NO_MODEL = f"""no model to serve: --model was not given and {DEFAULT_MODEL} does not exist.
Train the quickstart model:   uv run editflow-train pt --config configs/pt/quickstart.yaml
or convert a pretrained one:  uv run editflow convert --model SRC --output DIR
then: uv run editflow-serve --model DIR"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("editflow-serve", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--config", help="YAML file with flag values (command-line flags override it)")
    a("--model", help=f"checkpoint folder (default: {DEFAULT_MODEL} if it exists)")
    a("--served-model-name", help="model id in the API (default: the folder name)")
    a("--host", default="127.0.0.1")
    a("--port", type=int, default=8000)
    a(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' (or env EDITFLOW_API_KEY)",
    )
    a("--device", default="cpu", help="torch device for the model, e.g. cuda")
    a(
        "--dtype",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="weight dtype: auto (as saved), fp32, bf16, fp16 (see the README for which is faster)",
    )
    a("--torch-threads", type=int, default=None, help="torch.set_num_threads for the engine")
    a("--max-running", type=int, default=32, help="sequences advancing together per step")
    a("--max-queued", type=int, default=256, help="sequences waiting for a slot before 429")
    a(
        "--max-tokens-per-forward",
        type=int,
        default=None,
        help="run each step as forwards over rows of similar length, each at most this many "
        "padded tokens (same samples, less padding); 0: one padded forward. Default: 4096 on a "
        "CPU, 0 on a GPU",
    )
    a("--steps", type=int, default=64, help="default tau-leaping steps")
    a("--temperature", type=float, default=1.0, help="default temperature")
    a("--top-p", type=float, default=1.0, help="default nucleus mass")
    a("--top-k", type=int, default=0, help="default top-k (0: all)")
    a("--max-tokens", type=int, default=256, help="default cap on generated tokens")
    a("--x0", default=None, help="default x0 spec (default: the model config's)")
    a("--idle-stop-steps", type=int, default=0, help="default early stop after N edit-free steps")
    a("--drain-timeout", type=float, default=30.0, help="seconds running requests get on SIGTERM")
    a("--keepalive", type=float, default=5.0, help="seconds between SSE keep-alive comments")
    a("--max-body-bytes", type=int, default=1 << 20, help="request body cap (413 beyond)")
    a("--cors-origins", default="*", help="comma-separated allowed origins")
    a("--log-level", default="info")
    a(
        "--replicas",
        type=int,
        default=0,
        help="serve N replicas on Ray Serve, each an engine with its own batch (needs the ray "
        "extra); 0: one process, no Ray",
    )
    a("--min-replicas", type=int, default=1, help="with --max-replicas: autoscaling floor")
    a("--max-replicas", type=int, default=0, help="autoscale replicas on Ray Serve up to N")
    a("--replica-cpus", type=float, default=1.0, help="CPUs Ray reserves for each replica")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse flags, with defaults taken from ``--config`` YAML when given."""
    parser = build_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        data = yaml.safe_load(Path(pre.config).read_text()) or {}
        known = {a.dest for a in parser._actions}
        bad = sorted(k for k in data if k.replace("-", "_") not in known or k == "config")
        if bad:
            parser.error(f"{pre.config}: unknown keys {bad}")
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in data.items()})
    args = parser.parse_args(argv)
    if args.replicas < 0 or args.max_replicas < 0 or not 0 < args.min_replicas:
        parser.error("--replicas, --max-replicas must be >= 0 and --min-replicas >= 1")
    if args.max_replicas and (args.replicas or args.min_replicas > args.max_replicas):
        parser.error("give --replicas or --min/--max-replicas, with min <= max")
    if args.max_tokens_per_forward is not None and args.max_tokens_per_forward < 0:
        parser.error(f"--max-tokens-per-forward must be >= 0, got {args.max_tokens_per_forward}")
    return args


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


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """The app and its engine for parsed ``args``."""
    from .app import create_app
    from .engine import Engine, load_model
    from .metrics import Metrics
    from .serving import ServeSettings

    path = resolve_model(args.model)
    metrics = Metrics()
    engine = Engine(
        lambda: load_model(path, args.device, args.dtype),
        max_running=args.max_running,
        max_queued=args.max_queued,
        device=args.device,
        metrics=metrics,
        torch_threads=args.torch_threads,
        max_tokens_per_forward=args.max_tokens_per_forward,
    )
    settings = ServeSettings(
        served_model_name=args.served_model_name or path.resolve().name,
        steps=args.steps,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_tokens=args.max_tokens,
        x0=args.x0,
        idle_stop_steps=args.idle_stop_steps,
        keepalive_s=args.keepalive,
    )
    app = create_app(
        engine,
        settings,
        api_key=args.api_key or os.environ.get("EDITFLOW_API_KEY"),
        metrics=metrics,
        max_body_bytes=args.max_body_bytes,
        cors_origins=tuple(o.strip() for o in args.cors_origins.split(",") if o.strip()),
    )
    return app, engine


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from .http_protocol import uvicorn_config
    from .request_id import RequestIdFilter

    args = parse_args(argv)
    if args.replicas or args.max_replicas:
        from .ray_serve import run

        return run(args)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())  # the id of the request being served, or "-"
    app, engine = build(args)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            engine.drain()  # /health 503 and new requests 503 from now on
            if sig == signal.SIGTERM:
                self.should_exit = True  # drain, then exit 0 (uvicorn would re-raise SIGTERM)
            else:
                super().handle_exit(sig, frame)

    config = uvicorn_config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=args.drain_timeout,
    )
    Server(config).run()


if __name__ == "__main__":
    main()
