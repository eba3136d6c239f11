"""The replica flags of `editflow-serve` and the Ray Serve deployment options they give."""

from __future__ import annotations

import pytest
from editflow_serve.cli import parse_args


@pytest.mark.parametrize(
    "flags",
    [
        ["--replicas", "-1"],
        ["--max-replicas", "-2"],
        ["--min-replicas", "0", "--max-replicas", "2"],
        ["--min-replicas", "3", "--max-replicas", "2"],
        ["--replicas", "2", "--max-replicas", "4"],
    ],
)
def test_bad_replica_flags_are_refused(flags, capsys):
    with pytest.raises(SystemExit):
        parse_args(flags)
    assert "replicas" in capsys.readouterr().err


def test_deployment_options():
    pytest.importorskip("ray.serve", reason="needs the ray extra (uv sync --extra ray)")
    from editflow_serve.ray_serve import deployment_options

    fixed = deployment_options(parse_args(["--replicas", "3", "--max-running", "8"]))
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    # a replica holds only what its engine runs; the rest waits in Ray's bounded queue
    assert fixed["max_ongoing_requests"] == 8 and fixed["max_queued_requests"] == 256
    assert fixed["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 0}
    auto = deployment_options(
        parse_args(["--min-replicas", "1", "--max-replicas", "4", "--device", "cuda:0"])
    )
    assert auto["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 32,
    }
    assert "num_replicas" not in auto and auto["ray_actor_options"]["num_gpus"] == 1
