"""End-to-end runs on CPU: a tiny pt run from scratch, SFT from it, LoRA; what they must leave."""

from __future__ import annotations

import json
import math

import pytest
import torch

from .conftest import CHAT, write_config


def _losses(logs: list[dict], key: str = "loss") -> list[float]:
    return [entry[key] for entry in logs if key in entry]


def test_loss_finite_and_falling(pt_run):
    losses = _losses(pt_run["logs"])
    assert len(losses) == 8
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses


def test_loss_parts_and_edit_counts_logged(pt_run):
    entry = next(e for e in pt_run["logs"] if "loss" in e)
    for key in ("outflow", "edit_term", "n_ins", "n_del", "n_sub", "tokens_per_second"):
        assert key in entry, key
    assert entry["n_sub"] > 0 and entry["n_ins"] + entry["n_del"] > 0


def test_every_trainable_parameter_changed(pt_run):
    initial, final = pt_run["initial"], pt_run["final"]
    assert initial.keys() == final.keys() and len(initial) > 10
    unchanged = [n for n in initial if torch.equal(initial[n], final[n])]
    assert not unchanged, unchanged


def test_final_checkpoint_loads_with_auto_classes(pt_run):
    import editflow_models  # noqa: F401
    from transformers import AutoModel, AutoTokenizer

    final = pt_run["out"] / "checkpoint-final"
    assert (final / "COMPLETE").is_file() and (final / "model.safetensors").is_file()
    assert not (pt_run["out"] / ".checkpoint-final.tmp").exists()
    model = AutoModel.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    assert (
        model.config.x0 == "masks[length:8-40]" and model.config.mask_token_id == tok.mask_token_id
    )
    for name, p in model.named_parameters():
        assert torch.equal(p, pt_run["final"][name]), name
    ids = torch.tensor([[tok.bos_token_id, 10, 11]])
    out = model(input_ids=ids, t=torch.tensor([0.5]))
    assert out.rates.shape == (1, 3, 3) and out.ins_logits.shape == (1, 3, len(tok))


def test_samples_and_summary(pt_run):
    summary = json.loads((pt_run["out"] / "summary.json").read_text())
    assert len(summary["samples"]) == 2
    assert 0.0 <= summary["real_word_fraction"] <= 1.0
    assert summary["global_step"] == 40
    # the held-out likelihood bound, after training and at each evaluation
    bound = summary["heldout_bound"]
    assert 0 < bound["bpc"] < 40 and 0 < bound["bpc_se"] < 0.2 * bound["bpc"]
    assert bound["nll_bound"] == pytest.approx(
        bound["bpc"] * math.log(2) * bound["chars"] / bound["tokens"]
    )
    assert bound["sequences"] > 0 and bound["chars"] > bound["tokens"] > 0
    evals = [e for e in pt_run["logs"] if "eval_bpc" in e]
    assert [e["step"] for e in evals] == [20, 40]
    assert summary["eval_bpc"] == evals[-1]["eval_bpc"] and evals[-1]["eval_bpc_se"] > 0


def test_sft_from_pt_checkpoint(pt_run, tmp_path):
    from editflow_train.cli import main

    out = tmp_path / "sft"
    cfg = write_config(
        tmp_path / "sft.yaml",
        {
            "model_name_or_path": str(pt_run["out"] / "checkpoint-final"),
            "dataset": f"{CHAT}[train:40,test:4]",
            "max_length": 200,
            "sft_truncation": "truncate_response",
            "output_dir": str(out),
            "max_steps": 12,
            "per_device_train_batch_size": 4,
            "learning_rate": 3e-3,
            "logging_steps": 3,
            "save_strategy": "no",
            "use_cpu": True,
            "torch_num_threads": 1,
            "num_samples": 2,
            "sample_steps": 4,
            "sample_max_new_tokens": 8,
            "eval_strategy": "steps",
            "eval_steps": 12,
            "disable_tqdm": True,
            "report_to": "tensorboard",
        },
    )
    assert main(["sft", "--config", str(cfg)]) == 0
    state = json.loads((out / "summary.json").read_text())
    assert state["global_step"] == 12 and len(state["samples"]) == 2
    assert math.isfinite(state["eval_loss"]) and state["eval_loss"] > 0
    assert list(out.rglob("events.out.tfevents.*")), "no TensorBoard events written"
    final = out / "checkpoint-final"
    assert (final / "COMPLETE").is_file() and (final / "tokenizer.json").is_file()


def test_lora_run_is_merged(pt_run, tmp_path):
    import editflow_models  # noqa: F401
    from editflow_train.cli import main
    from transformers import AutoModel

    out = tmp_path / "lora"
    src = pt_run["out"] / "checkpoint-final"
    rc = main(
        [
            "pt",
            "--model_name_or_path",
            str(src),
            "--dataset",
            f"{pt_run['out'].parent / 'pt.yaml'}"[:0]
            + str(CHAT.parent / "tiny-shakespeare.txt[train:100]"),
            "--lora",
            "true",
            "--lora_r",
            "4",
            "--max_length",
            "32",
            "--output_dir",
            str(out),
            "--max_steps",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "1e-2",
            "--use_cpu",
            "true",
            "--torch_num_threads",
            "1",
            "--num_samples",
            "0",
            "--save_strategy",
            "no",
            "--disable_tqdm",
            "true",
        ]
    )
    assert rc == 0
    merged = AutoModel.from_pretrained(out / "checkpoint-final")
    base = AutoModel.from_pretrained(src)
    keys = set(merged.state_dict())
    assert keys == set(base.state_dict()) and not any("lora" in k for k in keys)
    diff = [k for k, v in merged.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert any(k.startswith("backbone.") for k in diff)  # adapters merged into the backbone
    assert any(k.startswith("ins_head.") for k in diff)  # new heads trained in full
