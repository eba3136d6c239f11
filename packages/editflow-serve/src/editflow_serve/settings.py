"""``ServeSettings``: every flag of ``editflow-serve`` in one dataclass.

The command-line parser is built from these fields (``cli.build_parser``: one ``--flag`` per
field, its default and help from here), YAML config keys are the field names, and the app reads
the same object (``create_app(engine, settings)``), so a flag is declared once.

The default sampling settings are not written here: they are ``editflow_core.SamplingParams``'
defaults, read when a ``ServeSettings`` is made (``sampling_default``), so the library, the
server and the ``editflow`` CLI cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editflow_core import SamplingParams

DEFAULT_MODEL = "runs/quickstart/checkpoint-final"
DEFAULT_SERVED_NAME = "editflow"


def sampling_default(name: str) -> Any:
    """The default of ``SamplingParams.<name>`` (the one source of the sampling defaults)."""
    for f in dataclasses.fields(SamplingParams):
        if f.name == name:
            return f.default
    raise KeyError(f"SamplingParams has no field {name!r}")


def _flag(default: Any, help: str | None = None, **argparse_kw: Any) -> Any:
    """A field with its ``--flag``'s help and extra ``add_argument`` keywords."""
    return field(default=default, metadata={"help": help, **argparse_kw})


def _sampling(name: str, help: str) -> Any:
    """A field whose default is ``SamplingParams``' default for ``name``, read at creation."""
    return field(default_factory=lambda: sampling_default(name), metadata={"help": help})


def _origins(text: str) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b'): the comma-separated --cors-origins."""
    return tuple(o.strip() for o in text.split(",") if o.strip())


@dataclass
class ServeSettings:
    """The server's flags (``editflow-serve --help``); requests override the sampling ones."""

    # what to serve, where
    model: str | None = _flag(None, f"checkpoint folder (default: {DEFAULT_MODEL} if it exists)")
    served_model_name: str | None = _flag(None, "model id in the API (default: the folder name)")
    host: str = _flag("127.0.0.1")
    port: int = _flag(8000)
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"help": "require 'Authorization: Bearer KEY' (or env EDITFLOW_API_KEY)"},
    )
    device: str = _flag("cpu", "torch device for the model, e.g. cuda")
    dtype: str = _flag(
        "auto",
        "weight dtype: auto (as saved), fp32, bf16, fp16 (see the README for which is faster)",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    torch_threads: int | None = _flag(None, "torch.set_num_threads for the engine")
    # the engine's batch
    max_running: int = _flag(32, "sequences advancing together per step")
    max_queued: int = _flag(256, "sequences waiting for a slot before 429")
    max_tokens_per_forward: int | None = _flag(
        None,
        "run each step as forwards over rows of similar length, each at most this many "
        "padded tokens (same samples, less padding); 0: one padded forward. Default: 4096 on a "
        "CPU, 0 on a GPU",
    )
    # default sampling settings (a request's own fields win)
    steps: int = _sampling("steps", "default tau-leaping steps")
    temperature: float = _sampling("temperature", "default temperature")
    top_p: float = _sampling("top_p", "default nucleus mass")
    top_k: int = _sampling("top_k", "default top-k (0: all)")
    max_tokens: int = _sampling("max_new_tokens", "default cap on generated tokens")
    x0: str | None = _flag(None, "default x0 spec (default: the model config's)")
    idle_stop_steps: int = _sampling(
        "idle_stop_steps", "default early stop after N edit-free steps"
    )
    # HTTP
    drain_timeout: float = _flag(30.0, "seconds running requests get on SIGTERM")
    keepalive: float = _flag(5.0, "seconds between SSE keep-alive comments")
    disconnect_poll: float = _flag(
        0.25, "seconds between checks that a non-streaming client is still connected"
    )
    max_body_bytes: int = _flag(1 << 20, "request body cap (413 beyond)")
    cors_origins: tuple[str, ...] = _flag(
        ("*",), "comma-separated allowed origins (default: *)", type=_origins
    )
    log_level: str = _flag("info")
    # Ray Serve replicas
    replicas: int = _flag(
        0,
        "serve N replicas on Ray Serve, each an engine with its own batch (needs the ray "
        "extra); 0: one process, no Ray",
    )
    min_replicas: int = _flag(1, "with --max-replicas: autoscaling floor")
    max_replicas: int = _flag(0, "autoscale replicas on Ray Serve up to N")
    replica_cpus: float = _flag(1.0, "CPUs Ray reserves for each replica")

    @property
    def model_id(self) -> str:
        """The model's id in the API: ``served_model_name``, else the folder's name."""
        if self.served_model_name:
            return self.served_model_name
        if self.model:
            return Path(self.model).resolve().name
        return DEFAULT_SERVED_NAME
