"""Editing on held-out Shakespeare: repair a corrupted passage, fill a hole.

    uv run editflow-train pt --config configs/pt/quickstart-edit.yaml     # about 4 minutes
    uv run python benchmarks/bench_editing.py [--models runs/quickstart-edit/checkpoint-final
                                               runs/quickstart/checkpoint-final] [--n 100]

For each checkpoint, on the first ``--n`` held-out chunks of the quickstart's test split, cut as
training cuts them (documents packed into ``--max-length`` - 1 tokens: a model trained on packed
chunks expects texts of that length):

- **repair**: the passage's tokens corrupted by ``corrupt[p:0.2]`` (the training x0: about 0.2
  random insertions, deletions and substitutions per token, new tokens drawn from the held-out
  text) are the draft; the model edits it (x0 = the draft). Reported: the token error rate
  (edit distance to the original / its length) of the draft and of the edited text, the share
  of passages the edit improved / made worse, and the draft tokens kept unchanged (what the
  server reports as accepted prediction tokens).
- **fill**: the middle quarter of the chunk's tokens is removed; the model writes between the
  given prefix and suffix. Reported: the character error rate of the whole passage after the fill
  (an empty fill scores the middle's share) and how often the filled passage has the original's
  length within 25%.

A model trained without ``fim`` / ``edit_x0`` (the plain quickstart) is the baseline: the gap is
what the editing objectives buy at the same budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from editflow_core import SamplingParams, align, make_x0_sampler
from rapidfuzz.distance import Levenshtein

ROOT = Path(__file__).resolve().parents[1]
SPEC = "data/tiny-shakespeare.txt[train:7000,test:200]"


def passages(setup, n: int, max_length: int) -> list[list[int]]:
    """The first n held-out chunks, cut as training cuts them (documents packed with EOS into
    ``max_length`` - 1 tokens after the anchor), without their anchor."""
    from editflow_train.chunking import pretraining_dataset
    from editflow_train.sources import load_dataset_spec

    _, test = load_dataset_spec(str(ROOT / SPEC), txt_sample_by="paragraph")
    chunks = pretraining_dataset(
        test, setup.tokenizer, anchor_token_id=setup.anchor_token_id,
        eos_token_id=setup.eos_token_id, text_field="text", max_length=max_length,
    )  # fmt: skip
    return [ex["input_ids"][1:] for ex in chunks.select(range(min(n, len(chunks))))]


def middle(r, start) -> list[int]:
    """The tokens between a result's given prefix and suffix (EOS inside kept: chunks hold
    document ends)."""
    return r.tokens[len(start.prefix) : len(r.tokens) - len(start.suffix)]


def edit_rate(a: list[int], b: list[int]) -> float:
    """Token edit distance from b to a, per token of a."""
    z0, z1 = align(b, a)
    return sum(x != y for x, y in zip(z0, z1)) / max(len(a), 1)


TEMPERATURE = 0.3  # repair and fill want the model's likeliest tokens (``--temperature``)


def run(setup, starts, steps: int, seed: int):
    """Results of one batch of ``Start``s, in order."""
    sampler = setup.sampler()
    for i, st in enumerate(starts):
        budget = 2 * (len(st.x0) + 8)
        params = SamplingParams(
            steps=steps, seed=seed + i, max_new_tokens=budget, temperature=TEMPERATURE
        )
        st.add_to(sampler, params, i)
    results = {}
    while sampler.has_work:
        results.update({r.key: r for r in sampler.step()})
    return [results[i] for i in range(len(starts))]


def repair(setup, texts, steps: int) -> dict[str, float]:
    pool = torch.tensor([t for ids in texts for t in ids])
    corrupt = make_x0_sampler("corrupt[p:0.2]")
    gen = torch.Generator().manual_seed(0)
    drafts = [corrupt.sample(gen, x1=ids, pool=pool).tolist() for ids in texts]
    anchor = [setup.anchor_token_id]
    starts = [setup.start(anchor, 0, draft=d) for d in drafts]
    results = run(setup, starts, steps, seed=0)
    before = [edit_rate(t, d) for t, d in zip(texts, drafts)]
    after = [edit_rate(t, middle(r, st)) for t, r, st in zip(texts, results, starts)]
    n = len(texts)
    return {
        "draft TER": sum(before) / n,
        "edited TER": sum(after) / n,
        "improved": sum(a < b for a, b in zip(after, before)) / n,
        "worse": sum(a > b for a, b in zip(after, before)) / n,
        "kept": sum(r.x0_kept for r in results) / sum(map(len, drafts)),
        "forwards": sum(r.forward_passes for r in results) / n,
    }


def fill(setup, texts, steps: int) -> dict[str, float]:
    starts, cuts = [], []
    for ids in texts:
        a = len(ids) * 3 // 8
        b = a + max(len(ids) // 4, 1)
        cuts.append((a, b))
        prefix = [setup.anchor_token_id, *ids[:a]]
        starts.append(setup.start(prefix, len(starts), suffix=ids[b:]))
    results = run(setup, starts, steps, seed=1000)
    cer, empty, near = [], [], 0
    for ids, (a, b), r, st in zip(texts, cuts, results, starts):
        original = setup.decode(ids)
        filled = setup.decode([*ids[:a], *middle(r, st), *ids[b:]])
        hole = setup.decode([*ids[:a], *ids[b:]])
        cer.append(Levenshtein.distance(filled, original) / len(original))
        empty.append(Levenshtein.distance(hole, original) / len(original))
        near += abs(len(middle(r, st)) - (b - a)) <= 0.25 * (b - a)
    n = len(texts)
    return {"empty CER": sum(empty) / n, "filled CER": sum(cer) / n, "length ok": near / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=[
            ROOT / "runs/quickstart-edit/checkpoint-final",
            ROOT / "runs/quickstart/checkpoint-final",
        ],
    )
    p.add_argument("--n", type=int, default=100, help="held-out passages")
    p.add_argument("--max-length", type=int, default=64, help="the training chunk length")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--temperature", type=float, default=TEMPERATURE, help="of Q (default 0.3)")
    args = p.parse_args()
    globals()["TEMPERATURE"] = args.temperature
    from editflow_models import load_generation_setup

    torch.set_num_threads(1)
    rows = []
    for path in args.models:
        if not (path / "config.json").is_file():
            print(f"skipping {path}: no checkpoint (train it first, see the module docstring)")
            continue
        setup = load_generation_setup(path)
        texts = passages(setup, args.n, args.max_length)
        rows.append(
            (path.parent.name, repair(setup, texts, args.steps), fill(setup, texts, args.steps))
        )
    print(
        f"\n{args.n} held-out chunks of {args.max_length - 1} tokens, {args.steps} steps, "
        f"temperature {args.temperature}\n"
    )
    print(
        "| model | draft TER | edited TER | improved | worse | draft kept | empty-hole CER "
        "| filled CER | fill length ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rep, fil in rows:
        print(
            f"| {name} | {rep['draft TER']:.3f} | {rep['edited TER']:.3f} | {rep['improved']:.2f} "
            f"| {rep['worse']:.2f} | {rep['kept']:.2f} | {fil['empty CER']:.3f} "
            f"| {fil['filled CER']:.3f} | {fil['length ok']:.2f} |"
        )


if __name__ == "__main__":
    main()
