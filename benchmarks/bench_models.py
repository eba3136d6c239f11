"""Training cost of a converted Edit Flow model against its stock masked LM (issue 3).

Both models get the same inputs in the same run: x_t, the attention mask and t of one core
training path (x1 random tokens, x0 empty, kappa cubic). The stock MLM runs forward + backward
of its usual loss (cross-entropy at 15% of the real positions, logits at every position, as
``ModernBertForMaskedLM`` computes them). The Edit Flow model runs forward + backward of the
core ``edit_flow_loss`` with token logits at the path's ins / sub rows only. A third row runs
the Edit Flow model with logits at every position (what it would cost without the row gather).

Memory: the peak of bytes allocated during one forward + backward, above what was allocated
before it (activations, temporaries and gradients; parameters excluded, their count is shown).
On CUDA it is ``torch.cuda.max_memory_allocated``. On CPU a ``TorchDispatchMode`` sees every
tensor an aten op returns (forward and backward), counts its storage's bytes until that storage
is freed (a weakref finalizer) and keeps the peak: the same quantity as the CUDA figure, minus
scratch memory a kernel allocates and frees internally, and free of the process's RSS noise.

    uv run python benchmarks/bench_models.py                 # ModernBERT-like, V = 50368
    uv run python benchmarks/bench_models.py --arch bert --vocab 30522
"""

from __future__ import annotations

import argparse
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from editflow_core import align_batch, edit_flow_loss, make_scheduler, sample_path
from editflow_models import EditFlowModel, convert
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import AutoModelForMaskedLM, BertConfig, ModernBertConfig


def stock_mlm(arch: str, vocab: int, hidden: int, layers: int, seq: int) -> torch.nn.Module:
    sizes = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        intermediate_size=4 * hidden,
        pad_token_id=0,
    )
    if arch == "modernbert":
        config = ModernBertConfig(
            **sizes,
            max_position_embeddings=seq,
            bos_token_id=1,
            cls_token_id=1,
            eos_token_id=2,
            sep_token_id=2,
        )
    else:
        config = BertConfig(**sizes, max_position_embeddings=seq)
    return AutoModelForMaskedLM.from_config(config)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of every storage an op creates until it is freed; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, weakref.finalize] = {}
        self.current = self.peak = 0

    def _free(self, key: int, nbytes: int) -> None:
        if self.live.pop(key, None) is not None:
            self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    nbytes = storage.nbytes()
                    self.live[key] = weakref.finalize(storage, self._free, key, nbytes)
                    self.current += nbytes
                    self.peak = max(self.peak, self.current)
        return out


def peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated by ``step`` above the bytes allocated before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with _LiveTensorBytes() as counter:
        step()
    return counter.peak


def timed(steps: list[Callable[[], None]], reps: int, device: torch.device) -> list[float]:
    """Fastest of ``reps`` runs of each step, in seconds, after one warm-up each. The steps run
    interleaved (a, b, c, a, b, c, ...) so that other load on a shared machine hits all of them
    alike; the minimum is the figure least disturbed by it."""
    for step in steps:
        step()
    best = [float("inf")] * len(steps)
    for _ in range(reps):
        for i, step in enumerate(steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["modernbert", "bert"], default="modernbert")
    parser.add_argument("--vocab", type=int, default=50368)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    stock = stock_mlm(args.arch, args.vocab, args.hidden, args.layers, args.seq)
    with tempfile.TemporaryDirectory() as tmp:
        stock.save_pretrained(Path(tmp) / "src")
        convert(Path(tmp) / "src", Path(tmp) / "ef", anchor_token_id=1)
        model = EditFlowModel.from_pretrained(Path(tmp) / "ef")
    stock.to(device).train()
    model.to(device).train()

    # one core training path: x1 random tokens of length seq, x0 empty (all insertions remain)
    g = torch.Generator().manual_seed(0)
    x1s = [
        [1, *torch.randint(5, args.vocab, (args.seq - 1,), generator=g).tolist()]
        for _ in range(args.batch)
    ]
    x0s = [
        [1, *torch.randint(5, args.vocab, (args.seq // 4,), generator=g).tolist()]
        for _ in range(args.batch)
    ]
    scheduler = make_scheduler("cubic")
    path = sample_path(
        align_batch(x0s, x1s, coupling="optimal", generator=g),
        scheduler,
        t=torch.full((args.batch,), 0.9),
        generator=g,
    )
    ids, mask, t = path.x_t.to(device), path.attention_mask.to(device), path.t.to(device)
    labels = torch.where((torch.rand(ids.shape, generator=g) < 0.15).to(device) & mask, ids, -100)

    def stock_step() -> None:
        stock(input_ids=ids, attention_mask=mask.long(), labels=labels).loss.backward()
        stock.zero_grad(set_to_none=True)

    def ef_step(gather: bool = True) -> None:
        rows = dict(ins_rows=path.ins_rows.to(device), sub_rows=path.sub_rows.to(device))
        if gather:
            out = model(ids, mask, t, **rows)
            loss = edit_flow_loss(out, path, scheduler).loss
        else:
            out = model(ids, mask, t)
            ins = out.ins_logits.flatten(0, 1)[rows["ins_rows"]]
            sub = out.sub_logits.flatten(0, 1)[rows["sub_rows"]]
            loss = edit_flow_loss(
                type(out)(rates=out.rates, ins_logits=ins, sub_logits=sub), path, scheduler
            ).loss
        loss.backward()
        model.zero_grad(set_to_none=True)

    n_stock = stock.num_parameters()
    n_ef = model.num_parameters()
    H, V = args.hidden, args.vocab
    rows = (
        ("stock MLM (logits at all rows)", stock_step, n_stock),
        ("edit flow (logits at edit rows)", ef_step, n_ef),
        ("edit flow (logits at all rows)", lambda: ef_step(gather=False), n_ef),
    )
    print(
        f"{args.arch}: V={V} H={H} layers={args.layers}, batch {args.batch} x L={ids.shape[1]} "
        f"(x_t of a cubic path at t=0.9), {path.ins_rows.numel()} ins rows, "
        f"{path.sub_rows.numel()} sub rows, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    print(
        f"extra params of the two token heads + rate head over the stock MLM: {n_ef - n_stock:,} "
        f"(= 2 untied H*V decoders + one transform + bias + 3H+3; source decoder is tied)"
    )
    print(f"{'run':34} {'fwd+bwd ms':>11} {'peak MB':>9} {'params M':>9}")
    seconds = timed([step for _, step, _ in rows], args.reps, device)
    for (name, step, n_params), sec in zip(rows, seconds):
        mb = peak_bytes(step, device) / 2**20
        print(f"{name:34} {1000 * sec:11.1f} {mb:9.1f} {n_params / 1e6:9.2f}")


if __name__ == "__main__":
    main()
