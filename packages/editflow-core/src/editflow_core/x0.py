"""Source distributions x0, named by spec strings.

| spec                       | x0 after the frozen prefix                               |
| -------------------------- | -------------------------------------------------------- |
| ``empty``                  | nothing: every data token is an insertion (paper default) |
| ``masks[length:N]``        | N copies of the mask token (the reference, for MLMs)      |
| ``uniform[length:N]``      | N tokens drawn uniformly from the vocabulary              |

The length of ``masks`` and ``uniform`` may vary per example: ``length:A-B`` draws it
uniformly from A..B inclusive, ``mean:M`` from a Poisson(M) (which may be 0). A spec's
``str()`` is canonical and round-trips (it goes into model configs).

None of these x0 hold information about x1, so the coupling to x1 is built in closed form
(``alignment.couple_noise``) rather than by an edit-distance DP.
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
)


@dataclass(frozen=True)
class X0Sampler:
    """Draws the x0 tokens that follow the frozen prefix (anchor / prompt).

    Attributes:
        kind: "empty", "masks" or "uniform".
        min_length, max_length: the length range (inclusive); equal for a fixed length.
        mean: Poisson mean of the length, or ``None`` for a range.
    """

    kind: str
    min_length: int = 0
    max_length: int = 0
    mean: float | None = None

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
    ) -> torch.Tensor:
        """Draw one x0 (without the frozen prefix).

        Args:
            generator: source of randomness.
            mask_token_id: the mask token, needed by ``masks``.
            vocab_size: the vocabulary size, needed by ``uniform``.
            exclude_ids: token ids ``uniform`` never draws (special tokens).

        Returns:
            (n,) long tensor.
        """
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

    def __str__(self) -> str:
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
