"""Sample quality per forward pass: toy languages with known distributions, and the quickstart.

    uv run python benchmarks/bench_sampling_quality.py [--samples 1000] [--steps 8 16 32 64 128 256]

Trains three tiny models through ``editflow-train`` (in parallel, about a minute on 2 CPU cores):

- ``empty`` / ``masks``: the language "ab" .5, "baa" .3, "c" .2 with x0 = empty and x0 = masks;
- ``guided``: instruction records where the prompt picks the answer ("p" -> "x" .6 / "y" .4,
  "q" -> "x" .2 / "y" .8), trained with ``cond_drop`` for classifier-free guidance.

For each number of steps it reports forwards per sample, the total variation between sampled and
true string frequencies (malformed strings counted as their own outcome, against 0) and the
malformed rate; for the guided model, each prompt's most likely answer's share at g = 0, 1, 2.
With ``runs/quickstart/checkpoint-final`` present it adds the quickstart's real-word fraction of
samples (words found in the corpus) per step count, a model-free score of text quality.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from editflow_testing.toy_training import TOY_LANGUAGE, toy_config, write_toy_language

ROOT = Path(__file__).resolve().parents[1]
RECORDS = {("p", "x"): 0.3, ("p", "y"): 0.2, ("q", "x"): 0.1, ("q", "y"): 0.4}


def yaml_config(cfg: dict) -> str:
    """A config dict as YAML text (one JSON-valued key per line)."""
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in cfg.items()) + "\n"


def train_toys(root: Path) -> dict[str, Path]:
    """The three toy checkpoints, trained in parallel."""
    write_toy_language(root / "toy.txt")
    recs = [json.dumps({"instruction": q, "output": a}) for (q, a), p in RECORDS.items()]
    recs = [r for r, (_, p) in zip(recs, RECORDS.items()) for _ in range(round(100 * p))]
    (root / "toy.jsonl").write_text("\n".join(recs) + "\n")
    quiet = {"nll_bound_samples": 0}  # no held-out bound after training
    configs = {
        "empty": ("pt", toy_config(root / "toy.txt", root / "empty", "empty", **quiet)),
        "masks": ("pt", toy_config(root / "toy.txt", root / "masks", "masks[length:3]", **quiet)),
        "guided": ("sft", toy_config(
            root / "toy.jsonl", root / "guided", "masks[length:2]", max_length=48,
            max_position_embeddings=64, time_conditioning=False, cond_drop=0.3,
            given_embedding=True, **quiet,
        )),
    }  # fmt: skip
    procs = {}
    for name, (mode, cfg) in configs.items():
        (root / f"{name}.yaml").write_text(yaml_config(cfg))
        cmd = [
            sys.executable,
            "-m",
            "editflow_train.cli",
            mode,
            "--config",
            str(root / f"{name}.yaml"),
        ]
        procs[name] = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for name, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"training the {name} toy failed:\n{out[-3000:]}")
    return {name: root / name / "checkpoint-final" for name in configs}


def sample(setup, prefix, n: int, steps: int, g: float = 0.0, max_new: int = 10):
    from editflow_core import SamplingParams

    gen = torch.Generator().manual_seed(steps)
    params = [
        SamplingParams(steps=steps, seed=i, max_new_tokens=max_new, guidance_scale=g)
        for i in range(n)
    ]
    return setup.sampler().generate([prefix] * n, [setup.draw_x0(gen) for _ in range(n)], params)


def toy_rows(setup, name: str, n: int, steps_list) -> list[str]:
    tok = setup.tokenizer
    truth = {
        (*tok(t, add_special_tokens=False)["input_ids"], setup.eos_token_id): p
        for t, p in TOY_LANGUAGE.items()
    }
    rows = []
    for steps in steps_list:
        res = sample(setup, setup.text_prefix(""), n, steps)
        counts = collections.Counter(tuple(r.tokens[1:]) for r in res)
        malformed = sum(c for x, c in counts.items() if x not in truth) / n
        tv = 0.5 * (sum(abs(counts.get(x, 0) / n - p) for x, p in truth.items()) + malformed)
        fwd = sum(r.forward_passes for r in res) / n
        rows.append(f"| {name} | {steps} | {fwd:.1f} | {tv:.3f} | {malformed:.3f} |")
    return rows


def guided_rows(setup, n: int, steps: int) -> list[str]:
    rows = []
    for prompt, favourite in (("p", "x"), ("q", "y")):
        prefix = setup.chat_prefix([{"role": "user", "content": prompt}])
        shares = []
        for g in (0.0, 1.0, 2.0):
            res = sample(setup, prefix, n, steps, g)
            shares.append(sum(setup.tokenizer.decode(r.completion) == favourite for r in res) / n)
        true = {"p": 0.6, "q": 0.8}[prompt]
        rows.append(
            f"| {prompt} -> {favourite} (true {true}) | {steps} | "
            + " | ".join(f"{s:.3f}" for s in shares)
            + " |"
        )
    return rows


def quickstart_rows(n: int, steps_list) -> list[str]:
    folder = ROOT / "runs" / "quickstart" / "checkpoint-final"
    if not (folder / "config.json").is_file():
        return []
    from editflow_models import load_generation_setup

    setup = load_generation_setup(folder)
    vocab = set(re.findall(r"[A-Za-z']+", (ROOT / "data" / "tiny-shakespeare.txt").read_text()))
    rows = []
    for steps in steps_list:
        res = sample(setup, setup.text_prefix(""), n, steps, max_new=96)
        words = [
            w for r in res for w in re.findall(r"[A-Za-z']+", setup.tokenizer.decode(r.completion))
        ]
        real = sum(w in vocab for w in words) / max(len(words), 1)
        fwd = sum(r.forward_passes for r in res) / n
        rows.append(f"| quickstart | {steps} | {fwd:.1f} | {real:.3f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    args = p.parse_args()
    torch.set_num_threads(1)
    import transformers
    from editflow_models import load_generation_setup

    transformers.utils.logging.disable_progress_bar()

    with tempfile.TemporaryDirectory() as tmp:
        ckpts = train_toys(Path(tmp))
        setups = {name: load_generation_setup(path) for name, path in ckpts.items()}
        print("\n| toy | steps | forwards / sample | total variation | malformed |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in ("empty", "masks"):
            print("\n".join(toy_rows(setups[name], name, args.samples, args.steps)))
        print("\n| guided toy: prompt -> favourite | steps | share at g = 0 | g = 1 | g = 2 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print("\n".join(guided_rows(setups["guided"], args.samples, 32)))
    rows = quickstart_rows(min(args.samples, 64), args.steps)
    if rows:
        print("\n| model | steps | forwards / sample | real-word fraction |")
        print("| --- | ---: | ---: | ---: |")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
