"""The data collator: x0 sampling, alignment and the training path, in DataLoader workers.

Each example is ``{"input_ids": x1, "frozen": f}`` (anchor + prompt = the first f tokens),
optionally with ``"x0_ids"``: a draft of the text after the prompt (a source column: the
draft -> final pairs of an editing dataset). The collator draws x0 = x1[:f] + x0 tokens,
aligns (x0, x1) after the frozen prefix, draws t and z_t (``editflow_core.sample_path``), and
returns the ``PathSample`` fields as a dict of tensors. The training step then only runs the
model and the loss.

Where x0 comes from, per row (the first that applies):

1. the example's ``x0_ids`` (a draft from the data), aligned optimally;
2. with probability ``edit_share``, ``edit_x0`` drawn from x1 (``corrupt[p:P]``: x1 with random
   edits), aligned optimally: the model learns to repair text;
3. the model's own noise x0 (``empty``, ``masks``, ``uniform``), coupled in closed form.

Mixing 2 and 3 keeps a model able to write from nothing and to repair; ``edit_share`` 0.5 is a
balanced start. Independently, with probability ``fim`` a row becomes fill-in-the-middle: two
cut points a <= b uniform over the text after the prompt, x1[:a] and x1[b:] given, the middle
the only hole (its x0 as above, from the middle alone), so a model learns to fill a hole.

Randomness comes from torch's global generator: in a worker process it is seeded per worker by
the DataLoader (from the main process's RNG, which checkpoints save), in the main process it is
the main RNG itself; so runs are reproducible for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from editflow_core import (
    Given,
    Hole,
    PathSample,
    Scheduler,
    X0Sampler,
    align_batch,
    align_layouts,
    path_totals,
    sample_path,
    split_by_length,
)

PATH_FIELDS = tuple(f.name for f in fields(PathSample))


@dataclass
class EditFlowCollator:
    """Turns x1 examples into a sampled Edit Flow path.

    Attributes:
        x0_sampler: draws the x0 tokens after the frozen prefix.
        scheduler: kappa(t) for the path.
        pad_token_id: written into x_t's padding.
        mask_token_id: for ``masks`` x0 (``None`` if the tokenizer has none).
        vocab_size: for ``uniform`` x0.
        special_ids: ids ``uniform`` x0 never draws.
        coupling / gaps: see ``editflow_core.align_batch``.
        t_eps: t ~ U[0, 1 - t_eps].
        lam_prop: > 0: localized paths (``editflow_core.localized``), 0: plain paths.
        cond_drop: probability of dropping a row's prompt (x1 = anchor + completion, nothing
            frozen after the anchor): the same model learns the unconditional rates that
            classifier-free guidance compares against.
        cond_prefix: pretraining: freeze a random prefix of each chunk as its prompt, a share
            c^3 of its tokens with c ~ U[0, 1] (then dropped with ``cond_drop``).
        max_tokens_per_forward: > 0: split the batch into groups of rows of similar x_t length
            (``editflow_core.split_by_length``); the output is then ``{"groups": [fields, ...],
            "batch_totals": (2,) float64 (rows, scored tokens)}``.
        fim: probability of making a row fill-in-the-middle (see the module docstring).
        edit_x0: an x0 drawn from x1 (``corrupt[p:P]``), used with probability
            ``edit_share`` instead of ``x0_sampler``; ``None``: never.
        edit_share: see ``edit_x0``.
        end_ids: tokens ``edit_x0`` never inserts (EOS: a corruption that ends the text early
            teaches the model to cut texts short).
    """

    x0_sampler: X0Sampler
    scheduler: Scheduler
    pad_token_id: int
    mask_token_id: int | None
    vocab_size: int
    special_ids: Sequence[int] = ()
    coupling: str = "noise"
    gaps: str = "random"
    t_eps: float = 1e-3
    cond_drop: float = 0.0
    cond_prefix: bool = False
    max_tokens_per_forward: int = 0
    lam_prop: float = 0.0
    fim: float = 0.0
    edit_x0: X0Sampler | None = None
    edit_share: float = 0.0
    end_ids: Sequence[int] = ()

    def __post_init__(self) -> None:
        for name in ("fim", "edit_share", "cond_drop"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if self.x0_sampler.needs_x1:
            raise ValueError(
                f"x0 sampler '{self.x0_sampler}' is drawn from x1, so a model cannot sample from "
                "it; keep a noise x0 (empty, masks[...], uniform[...]) and pass it as edit_x0 "
                "(with edit_share)"
            )
        if self.edit_x0 is not None and not self.edit_x0.needs_x1:
            raise ValueError(f"edit_x0 must be drawn from x1 (corrupt[p:P]), got '{self.edit_x0}'")
        if self.x0_sampler.kind == "masks" and self.mask_token_id is None:
            raise ValueError(
                f"x0 sampler '{self.x0_sampler}' needs a mask token, but the tokenizer has none: "
                "add one (tokenizer.add_special_tokens({'mask_token': ...})) or use "
                "--x0_sampler empty / uniform[length:N]"
            )

    def x0(self, x1: Sequence[int], frozen: int) -> torch.Tensor:
        """x1's frozen prefix followed by sampled x0 tokens: (f + n,) long."""
        tail = self.x0_sampler.sample(
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
            exclude_ids=self.special_ids,
        )
        return torch.cat([torch.as_tensor(x1[:frozen], dtype=torch.long), tail])

    def conditioning(self, x1: Sequence[int], frozen: int) -> tuple[Sequence[int], int]:
        """x1 and its frozen count after the conditioning options (see the class docstring)."""
        if self.cond_prefix and frozen == 1 and len(x1) > 2:
            c = float(torch.rand(()))
            frozen = 1 + int(c**3 * (len(x1) - 1))
        if frozen > 1 and self.cond_drop > 0 and float(torch.rand(())) < self.cond_drop:
            x1, frozen = [*x1[:1], *x1[frozen:]], 1
        return x1, frozen

    def layout(self, example: dict, pool: torch.Tensor | None = None) -> tuple[list, str]:
        """One example's pieces (``Given`` / ``Hole``) and the coupling of its hole.

        ``pool``: the tokens ``edit_x0`` draws new tokens from.
        """
        x1, f = self.conditioning(example["input_ids"], int(example.get("frozen", 1)))
        x1 = list(x1)
        head, middle, tail = x1[:f], x1[f:], []
        draft = example.get("x0_ids")
        if draft is None and self.fim > 0 and middle and float(torch.rand(())) < self.fim:
            a, b = sorted(torch.randint(0, len(middle) + 1, (2,)).tolist())
            head, middle, tail = head + middle[:a], middle[a:b], middle[b:]
        if draft is not None:
            x0, coupling = list(draft), "optimal"
        elif self.edit_x0 is not None and float(torch.rand(())) < self.edit_share:
            x0, coupling = self._draw(self.edit_x0, middle, pool), "optimal"
        else:
            x0, coupling = self._draw(self.x0_sampler, middle), self.coupling
        pieces = [Given(head), Hole(x0, middle)] + ([Given(tail)] if tail else [])
        return pieces, coupling

    def _draw(
        self, sampler: X0Sampler, x1: list[int], pool: torch.Tensor | None = None
    ) -> list[int]:
        return sampler.sample(
            mask_token_id=self.mask_token_id,
            vocab_size=self.vocab_size,
            exclude_ids=self.special_ids,
            x1=x1,
            pool=pool,
        ).tolist()

    def token_pool(self, examples: Sequence[dict]) -> torch.Tensor:
        """Tokens ``edit_x0`` draws its new ones from: the batch's x1 after the prompts.

        Special tokens and ``end_ids`` are left out, repeats kept (a unigram distribution),
        so errors look like the text being edited, not like prompts.
        """
        tokens = torch.cat(
            [
                torch.as_tensor(ex["input_ids"][int(ex.get("frozen", 1)) :], dtype=torch.long)
                for ex in examples
            ]
        )
        special = torch.tensor([*self.special_ids, *self.end_ids], dtype=torch.long)
        return tokens[~torch.isin(tokens, special)]

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """B examples -> the ``PathSample`` fields (x_t (B, L), rate_mask (B, L, 3), edits (E,))."""
        if self.fim > 0 or self.edit_share > 0 or any("x0_ids" in ex for ex in examples):
            pool = self.token_pool(examples) if self.edit_x0 is not None else None
            pieces, couplings = zip(*(self.layout(ex, pool) for ex in examples))
            batch = align_layouts(pieces, coupling=couplings, gaps=self.gaps)
        else:  # the plain layout, with the vectorised noise coupling
            rows = [self.conditioning(ex["input_ids"], int(ex.get("frozen", 1))) for ex in examples]
            x1s = [x1 for x1, _ in rows]
            frozen = [f for _, f in rows]
            x0s = [self.x0(x1, f) for x1, f in zip(x1s, frozen)]
            batch = align_batch(x0s, x1s, frozen, coupling=self.coupling, gaps=self.gaps)
        path = sample_path(
            batch,
            self.scheduler,
            t_eps=self.t_eps,
            lam_prop=self.lam_prop,
            pad_token_id=self.pad_token_id,
        )
        if self.max_tokens_per_forward <= 0:
            return as_fields(path)
        groups = split_by_length(path, self.max_tokens_per_forward)
        totals = torch.tensor(path_totals(path), dtype=torch.float64)
        return {"groups": [as_fields(g) for g in groups], "batch_totals": totals}


def as_fields(path: PathSample) -> dict[str, torch.Tensor]:
    """A ``PathSample`` as the dict of tensors a DataLoader passes on."""
    return {name: getattr(path, name) for name in PATH_FIELDS}
