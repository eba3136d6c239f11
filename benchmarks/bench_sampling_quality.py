"""Sample quality per forward pass: toy languages with known distributions, and the quickstart.

    uv run python benchmarks/bench_sampling_quality.py [--samples 2000] [--steps 8 16 32 64 128]

Trains toy models through ``editflow-train`` in parallel (the tiny BERT of ``toy_config``, about
a minute each on one CPU thread; all of them take 3-5 minutes on 2 cores), on the language "ab"
.5, "baa" .3, "c" .2:

- ``empty``, ``masks``: x0 = empty and x0 = masks[length:3], the default training (the model
  reads t): ``masks`` with the plain sampler is the baseline ("today's sampler");
- ``masks-reverse``: with ``reverse_rates``, sampled with the corrector (``--correction``);
- ``masks-reverse-repair``: the same, with a share of the rows' x0 a corruption of x1
  (``edit_x0``), so the reverse rates are also trained off the path;
- ``masks-repair``: no reverse rates, the same off-path rows: the forward rates learn to repair;
- ``masks-time-free`` and ``masks-repair-time-free``: ``time_conditioning: false``, so the
  sampler reuses the forward of every row whose tokens did not change (forward reuse);
- ``guided``: instruction records where the prompt picks the answer ("p" -> "x" .6 / "y" .4,
  "q" -> "x" .2 / "y" .8), trained with ``cond_drop`` for classifier-free guidance;

and samples the exact oracle (the path's posterior rates, ``editflow_testing.toy_posterior``)
with and without the corrector, as the bound on what the corrector can do with perfect rates.

For each number of steps it reports forwards per sample, the total variation between sampled and
true string frequencies (malformed strings counted as their own outcome, against 0) and the
malformed rate. Then the aim's table: the forwards each method needs to reach the total
variation of the baseline at 64 steps (interpolated in log forwards between the step counts
that bracket it), against the baseline's 64. For the guided model: each prompt's favourite
answer's share and the total variation to the true answers at g = 0, 1, 2. With
``runs/quickstart/checkpoint-final`` present it adds the quickstart's real-word fraction of
samples (words found in the corpus) per step count, a model-free score of text quality.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from editflow_testing.toy_training import TOY_LANGUAGE, toy_config, write_toy_language

ROOT = Path(__file__).resolve().parents[1]
MASKS = "masks[length:3]"
REPAIR = {"edit_x0": "corrupt[p:0.3]", "edit_share": 0.3}  # off-path rows: x0 = a corrupted x1
TIME_FREE = {"time_conditioning": False}
#: toy name -> (x0, overrides of ``toy_config``)
TOYS = {
    "empty": ("empty", {}),
    "masks": (MASKS, {}),
    "masks-reverse": (MASKS, {"reverse_rates": True}),
    "masks-reverse-repair": (MASKS, {"reverse_rates": True, **REPAIR}),
    "masks-repair": (MASKS, REPAIR),
    "masks-time-free": (MASKS, TIME_FREE),
    "masks-repair-time-free": (MASKS, {**REPAIR, **TIME_FREE}),
}
TARGET_STEPS = 64  # the aim: the baseline's total variation at this many steps
RECORDS = {("p", "x"): 0.3, ("p", "y"): 0.2, ("q", "x"): 0.1, ("q", "y"): 0.4}


def yaml_config(cfg: dict) -> str:
    """A config dict as YAML text (one JSON-valued key per line)."""
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in cfg.items()) + "\n"


def train_toys(root: Path) -> dict[str, Path]:
    """The checkpoints of ``TOYS`` and the guided toy, trained in parallel."""
    write_toy_language(root / "toy.txt")
    recs = [json.dumps({"instruction": q, "output": a}) for (q, a), p in RECORDS.items()]
    recs = [r for r, (_, p) in zip(recs, RECORDS.items()) for _ in range(round(100 * p))]
    (root / "toy.jsonl").write_text("\n".join(recs) + "\n")
    quiet = {"nll_bound_samples": 0}  # no held-out bound after training
    configs = {
        name: ("pt", toy_config(root / "toy.txt", root / name, x0, **quiet, **extra))
        for name, (x0, extra) in TOYS.items()
    }
    configs["guided"] = ("sft", toy_config(
        root / "toy.jsonl", root / "guided", "masks[length:2]", max_length=48,
        max_position_embeddings=64, time_conditioning=False, cond_drop=0.3,
        given_embedding=True, **quiet,
    ))  # fmt: skip
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


def sample(setup, prefix, n: int, steps: int, g: float = 0.0, max_new: int = 10, c: float = 0.0):
    from editflow_core import SamplingParams

    gen = torch.Generator().manual_seed(steps)
    params = [
        SamplingParams(steps=steps, seed=i, max_new_tokens=max_new, guidance_scale=g, correction=c)
        for i in range(n)
    ]
    return setup.sampler().generate([prefix] * n, [setup.draw_x0(gen) for _ in range(n)], params)


def total_variation(results, truth: dict, skip: int = 1) -> tuple[float, float]:
    """(total variation, malformed rate) of the results' strings (after ``skip`` tokens)."""
    n = len(results)
    counts = collections.Counter(tuple(r.tokens[skip:]) for r in results)
    malformed = sum(c for x, c in counts.items() if x not in truth) / n
    tv = 0.5 * (sum(abs(counts.get(x, 0) / n - p) for x, p in truth.items()) + malformed)
    return tv, malformed


def toy_points(setup, n: int, steps_list, c: float = 0.0) -> list[tuple[int, float, float, float]]:
    """(steps, forwards per sample, total variation, malformed rate) per step count."""
    tok = setup.tokenizer
    truth = {
        (*tok(t, add_special_tokens=False)["input_ids"], setup.eos_token_id): p
        for t, p in TOY_LANGUAGE.items()
    }
    points = []
    for steps in steps_list:
        res = sample(setup, setup.text_prefix(""), n, steps, c=c)
        tv, malformed = total_variation(res, truth)
        points.append((steps, sum(r.forward_passes for r in res) / n, tv, malformed))
    return points


def oracle_points(n: int, steps_list, c: float) -> list[tuple[int, float, float, float]]:
    """The same for the exact oracle (x0 = 3 masks): the path's posterior rates, forward and
    reverse, enumerated (``editflow_testing.toy_posterior``); unreachable states get none."""
    from editflow_core import BatchSampler, SamplingParams, make_scheduler
    from editflow_testing.toy_posterior import OracleModel, ToyPosterior

    pad, anchor, eos, mask = 0, 1, 2, 3
    ids = {ch: 4 + i for i, ch in enumerate(sorted(set("".join(TOY_LANGUAGE))))}
    truth = {(*(ids[ch] for ch in text), eos): p for text, p in TOY_LANGUAGE.items()}
    vocab = 4 + len(ids)
    model = OracleModel(ToyPosterior(truth, 3, mask, lambda t: t**3), vocab)
    points = []
    for steps in steps_list:
        sampler = BatchSampler(
            model, make_scheduler("cubic"), pad_token_id=pad, eos_token_id=eos,
            banned_token_ids=[pad, anchor, mask], x0_kind="masks", mask_token_id=mask,
            vocab_size=vocab,
        )  # fmt: skip
        params = [
            SamplingParams(steps=steps, seed=i, max_new_tokens=8, correction=c) for i in range(n)
        ]
        res = sampler.generate([[anchor]] * n, [[mask] * 3] * n, params)
        tv, malformed = total_variation(res, truth)
        points.append((steps, sum(r.forward_passes for r in res) / n, tv, malformed))
    return points


def forwards_to_reach(points, target: float) -> str:
    """Forwards per sample at which the total variation first reaches ``target``.

    Interpolated linearly in log forwards between the two step counts that bracket the first
    crossing; "<= F" when the fewest steps measured already reach it, "> F" when none does.
    """
    for i, (_, fwd, tv, _) in enumerate(points):
        if tv <= target:
            if i == 0:
                return f"<= {fwd:.1f}"
            _, f0, tv0, _ = points[i - 1]
            share = (tv0 - target) / (tv0 - tv)
            return f"{math.exp(math.log(f0) + share * (math.log(fwd) - math.log(f0))):.1f}"
    return f"> {points[-1][1]:.1f}"


def guided_rows(setup, n: int, steps: int) -> list[str]:
    rows = []
    for prompt, favourite in (("p", "x"), ("q", "y")):
        prefix = setup.chat_prefix([{"role": "user", "content": prompt}])
        answers = {a: p / sum(q for (b, _), q in RECORDS.items() if b == prompt)
                   for (b, a), p in RECORDS.items() if b == prompt}  # fmt: skip
        cells = []
        for g in (0.0, 1.0, 2.0):
            res = sample(setup, prefix, n, steps, g)
            texts = collections.Counter(setup.tokenizer.decode(r.completion) for r in res)
            other = sum(c for a, c in texts.items() if a not in answers) / n
            tv = 0.5 * (sum(abs(texts.get(a, 0) / n - p) for a, p in answers.items()) + other)
            cells.append(f"{texts.get(favourite, 0) / n:.3f} / {tv:.3f}")
        rows.append(
            f"| {prompt} -> {favourite} (true {answers[favourite]:.1f}) | {steps} | "
            + " | ".join(cells)
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
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument(
        "--correction", type=float, default=0.5, help="corrector strength c (a_t = c t (1 - t))"
    )
    args = p.parse_args()
    if TARGET_STEPS not in args.steps:
        raise SystemExit(f"--steps must include {TARGET_STEPS} (the aim's reference)")
    torch.set_num_threads(1)
    import transformers
    from editflow_models import load_generation_setup

    transformers.utils.logging.disable_progress_bar()
    c, n = args.correction, args.samples
    methods = [  # (label, toy, correction)
        ("x0 = empty, plain", "empty", 0.0),
        ("plain (baseline)", "masks", 0.0),
        ("reverse rates, plain", "masks-reverse", 0.0),
        (f"reverse rates, corrected c = {c:g}", "masks-reverse", c),
        ("reverse rates trained off-path too, plain", "masks-reverse-repair", 0.0),
        (f"reverse rates trained off-path too, corrected c = {c:g}", "masks-reverse-repair", c),
        ("repair-trained, plain", "masks-repair", 0.0),
        ("time-free, plain (forward reuse)", "masks-time-free", 0.0),
        ("repair-trained + time-free, plain", "masks-repair-time-free", 0.0),
    ]
    points = {}
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = train_toys(Path(tmp))
        setups = {name: load_generation_setup(path) for name, path in ckpts.items()}
        for label, toy, corr in methods:
            points[label] = toy_points(setups[toy], n, args.steps, corr)
        for corr in (0.0, c):
            label = "exact oracle, " + (f"corrected c = {corr:g}" if corr else "plain")
            points[label] = oracle_points(n, [s for s in args.steps if s <= TARGET_STEPS], corr)
        guided = guided_rows(setups["guided"], n, 32)
    print(f"\n{n} samples per setting; x0 = masks[length:3] unless said")
    print("\n| method | steps | forwards / sample | total variation | malformed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, pts in points.items():
        for steps, fwd, tv, malformed in pts:
            print(f"| {label} | {steps} | {fwd:.1f} | {tv:.3f} | {malformed:.3f} |")
    target = next(tv for steps, _, tv, _ in points["plain (baseline)"] if steps == TARGET_STEPS)
    print(
        f"\nThe aim: forwards per sample to reach the baseline's total variation at "
        f"{TARGET_STEPS} steps ({target:.3f}); the baseline takes {TARGET_STEPS}"
    )
    print("\n| method | forwards / sample to reach it | vs the baseline's |")
    print("| --- | ---: | ---: |")
    for label, pts in points.items():
        if label.startswith("x0 = empty"):
            continue
        need = forwards_to_reach(pts, target)
        number = float(need.split()[-1])
        ratio = f"{number / TARGET_STEPS:.2f}x" if not need.startswith(">") else "not reached"
        print(f"| {label} | {need} | {ratio} |")
    print("\n| guided toy: prompt -> favourite | steps | share / TV at g = 0 | g = 1 | g = 2 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(guided))
    rows = quickstart_rows(min(n, 64), args.steps)
    if rows:
        print("\n| model | steps | forwards / sample | real-word fraction |")
        print("| --- | ---: | ---: | ---: |")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
