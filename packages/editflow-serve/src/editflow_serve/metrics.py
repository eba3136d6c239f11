"""Prometheus metrics of one server, kept in their own registry (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Request counts, queue depth, running batch, steps, edits per step and latencies."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "editflow_requests",
            "HTTP API requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "editflow_queue_depth", "Sequences waiting for a batch slot", registry=r
        )
        self.running = Gauge(
            "editflow_running_sequences", "Sequences in the running batch", registry=r
        )
        self.steps = Counter("editflow_steps", "Batched tau-leaping steps run", registry=r)
        self.batch_size = Histogram(
            "editflow_batch_size",
            "Sequences per step",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.edits_per_step = Histogram(
            "editflow_edits_per_step",
            "Edit operations applied in one step, whole batch",
            buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.latency = Histogram(
            "editflow_request_latency_seconds",
            "End-to-end request latency",
            ["endpoint"],
            buckets=_LATENCY,
            registry=r,
        )
        self.queue_wait = Histogram(
            "editflow_queue_wait_seconds",
            "Time a sequence waited for a batch slot",
            buckets=_LATENCY,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "editflow_prompt_tokens", "Prompt tokens processed", registry=r
        )
        self.completion_tokens = Counter(
            "editflow_completion_tokens", "Completion tokens generated", registry=r
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
