"""Source distributions x0, named by spec strings.

| spec                       | x0 after the frozen prefix                               |
| -------------------------- | -------------------------------------------------------- |
| ``empty``                  | nothing: every data token is an insertion (paper default) |
| ``masks[length:N]``        | N copies of the mask token (the reference, for MLMs)      |
| ``uniform[length:N]``      | N tokens drawn uniformly from the vocabulary              |
| ``corrupt[p:P]``           | x1 itself, corrupted: an edit coupling (training only)    |

The length of ``masks`` and ``uniform`` may vary per example: ``length:A-B`` draws it
uniformly from A..B inclusive, ``mean:M`` from a Poisson(M) (which may be 0). A spec's
``str()`` is canonical and round-trips (it goes into model configs).

None of the noise sources hold information about x1, so their coupling to x1 is built in closed
form (``alignment.couple_noise``) rather than by an edit-distance DP.

``corrupt[p:P]`` is an *edit coupling*: x0 is x1 with random edits, so a model trained on it
learns to repair text. Each x1 token is deleted with probability P/3, substituted by another
token with P/3, or followed by an inserted token with P/3 (and a token is inserted at the start
with P/3), so about P edits per token. New tokens come from ``pool`` when given (the collator
passes the batch's tokens: the data's unigram distribution, so errors look like the data's own
words rather than random ids from a 50k vocabulary), else uniformly from the vocabulary. It
needs x1 (``sample(..., x1=...)``), so it serves training only, aligned optimally
(``alignment.align``); a model samples from its noise x0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from .spec import check_keys, parse_spec

X0_SAMPLERS = (
    "empty",
    "masks[length:N]",
    "masks[length:A-B]",
    "masks[mean:M]",
    "uniform[length:N]",
    "uniform[length:A-B]",
    "uniform[mean:M]",
    "corrupt[p:P]",
)


@dataclass(frozen=True)
class X0Sampler:
    """Draws the x0 tokens that follow the frozen prefix (anchor / prompt).

    Attributes:
        kind: "empty", "masks", "uniform" or "corrupt".
        min_length, max_length: the length range (inclusive); equal for a fixed length.
        mean: Poisson mean of the length, or ``None`` for a range.
        rate: ``corrupt``'s edit probability per token.
    """

    kind: str
    min_length: int = 0
    max_length: int = 0
    mean: float | None = None
    rate: float = 0.0

    @property
    def needs_x1(self) -> bool:
        """Whether x0 is drawn from x1 (an edit coupling: align it optimally)."""
        return self.kind == "corrupt"

    def sample_length(self, generator: torch.Generator | None = None) -> int:
        """Draw the number of x0 tokens."""
        if self.kind == "empty":
            return 0
        if self.mean is not None:
            rate = torch.tensor([self.mean], dtype=torch.float64)
            return int(torch.poisson(rate, generator=generator).item())
        if self.min_length == self.max_length:
            return self.min_length
        return int(torch.randint(self.min_length, self.max_length + 1, (1,), generator=generator))

    def sample(
        self,
        generator: torch.Generator | None = None,
        *,
        mask_token_id: int | None = None,
        vocab_size: int | None = None,
        exclude_ids: Sequence[int] = (),
        x1: Sequence[int] | torch.Tensor | None = None,
        pool: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw one x0 (without the frozen prefix).

        Args:
            generator: source of randomness.
            mask_token_id: the mask token, needed by ``masks``.
            vocab_size: the vocabulary size, needed by ``uniform`` and ``corrupt``.
            exclude_ids: token ids ``uniform`` and ``corrupt`` never draw (special tokens).
            x1: the target tokens, needed by ``corrupt``.
            pool: (N,) long, tokens ``corrupt`` draws its new tokens from (with repeats: a
                unigram distribution); default uniform over the vocabulary.

        Returns:
            (n,) long tensor.
        """
        if self.kind == "corrupt":
            if x1 is None:
                raise ValueError(
                    f"x0 sampler {self} draws from x1, so it serves training only (as edit_x0); "
                    "a model samples from a noise x0: 'empty', 'masks[...]' or 'uniform[...]'"
                )
            x1 = torch.as_tensor(x1, dtype=torch.long)
            return self._corrupt(x1, generator, vocab_size, exclude_ids, pool)
        n = self.sample_length(generator)
        if self.kind == "empty" or n == 0:
            return torch.empty(0, dtype=torch.long)
        if self.kind == "masks":
            if mask_token_id is None:
                raise ValueError(
                    f"x0 sampler {self} needs a mask token, but the tokenizer has none; "
                    "add one or use 'empty' / 'uniform[...]'"
                )
            return torch.full((n,), mask_token_id, dtype=torch.long)
        if vocab_size is None or vocab_size <= 0:
            raise ValueError(f"x0 sampler {self} needs vocab_size > 0, got {vocab_size!r}")
        pool = _token_pool(vocab_size, tuple(sorted(set(exclude_ids))))
        return pool[torch.randint(len(pool), (n,), generator=generator)]

    def _corrupt(
        self,
        x1: torch.Tensor,
        generator: torch.Generator | None,
        vocab_size: int | None,
        exclude_ids: Sequence[int],
        pool: torch.Tensor | None,
    ) -> torch.Tensor:
        """x1 with random deletions, substitutions and insertions (see the module docstring)."""
        if pool is None or len(pool) == 0:
            if vocab_size is None or vocab_size <= 0:
                raise ValueError(f"x0 sampler {self} needs vocab_size > 0, got {vocab_size!r}")
            pool = _token_pool(vocab_size, tuple(sorted(set(exclude_ids))))
        n, p = len(x1), self.rate
        u = torch.rand(n + 1, generator=generator).tolist()  # each token's edit, the start's
        idx = torch.randint(len(pool), (2 * n + 1,), generator=generator).tolist()
        pool_ = pool.tolist()
        out: list[int] = [pool_[idx[2 * n]]] if u[n] < p / 3 else []
        for i, tok in enumerate(x1.tolist()):
            if u[i] < p / 3:
                continue  # deleted
            if u[i] < 2 * p / 3:  # substituted by another token
                new = pool_[idx[i]]
                out.append(new if new != tok else pool_[(idx[i] + 1) % len(pool_)])
                continue
            out.append(tok)
            if u[i] < p:  # a token inserted after it
                out.append(pool_[idx[n + i]])
        return torch.tensor(out, dtype=torch.long)

    def __str__(self) -> str:
        if self.kind == "corrupt":
            return f"corrupt[p:{self.rate:g}]"
        if self.kind == "empty":
            return "empty"
        if self.mean is not None:
            mean = int(self.mean) if float(self.mean).is_integer() else self.mean
            return f"{self.kind}[mean:{mean}]"
        if self.min_length == self.max_length:
            return f"{self.kind}[length:{self.min_length}]"
        return f"{self.kind}[length:{self.min_length}-{self.max_length}]"


@lru_cache(maxsize=8)
def _token_pool(vocab_size: int, exclude: tuple[int, ...]) -> torch.Tensor:
    keep = torch.ones(vocab_size, dtype=torch.bool)
    keep[[i for i in exclude if 0 <= i < vocab_size]] = False
    pool = keep.nonzero().squeeze(1)
    if len(pool) == 0:
        raise ValueError("uniform x0: every token id is excluded")
    return pool


def _positive_int(spec: str, key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"bad x0 spec {spec!r}: {key} must be a positive integer, got {text!r}"
        ) from None
    if value <= 0:
        raise ValueError(f"bad x0 spec {spec!r}: {key} must be a positive integer, got {value}")
    return value


def make_x0_sampler(spec: str) -> X0Sampler:
    """Parse an x0 spec (see the module table) into an ``X0Sampler``.

    Raises:
        ValueError: unknown name or key, a missing length, a non-integer, negative or zero
            length, or an empty range; the message names the problem and lists valid specs.
    """
    name, params = parse_spec(spec, "x0")
    valid = ", ".join(X0_SAMPLERS)
    if name == "empty":
        check_keys(spec, "x0", params, ())
        return X0Sampler("empty")
    if name == "corrupt":
        check_keys(spec, "x0", params, ("p",))
        try:
            rate = float(params.get("p", "nan"))
        except ValueError:
            rate = float("nan")
        if not 0 < rate <= 1:
            raise ValueError(
                f"bad x0 spec {spec!r}: corrupt needs p in (0, 1], e.g. 'corrupt[p:0.2]'"
            )
        return X0Sampler("corrupt", rate=rate)
    if name not in ("masks", "uniform"):
        raise ValueError(f"unknown x0 sampler {name!r} in spec {spec!r}; valid: {valid}")
    check_keys(spec, "x0", params, ("length", "mean"))
    if ("length" in params) == ("mean" in params):
        raise ValueError(
            f"bad x0 spec {spec!r}: give exactly one of 'length' or 'mean', "
            f"e.g. '{name}[length:64]'; valid: {valid}"
        )
    if "mean" in params:
        try:
            mean = float(params["mean"])
        except ValueError:
            raise ValueError(f"bad x0 spec {spec!r}: mean must be a positive number") from None
        if not mean > 0 or mean != mean or mean == float("inf"):
            raise ValueError(
                f"bad x0 spec {spec!r}: mean must be a positive number, got {params['mean']}"
            )
        return X0Sampler(name, mean=mean)
    lo_text, dash, hi_text = params["length"].partition("-")
    lo = _positive_int(spec, "length", lo_text.strip())
    hi = _positive_int(spec, "length", hi_text.strip()) if dash else lo
    if hi < lo:
        raise ValueError(f"bad x0 spec {spec!r}: length range {lo}-{hi} is empty")
    return X0Sampler(name, lo, hi)
