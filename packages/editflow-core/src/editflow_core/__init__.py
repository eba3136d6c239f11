"""editflow-core: the Edit Flow method in torch.

Alignment, training paths, the loss, x0 samplers, kappa schedulers, a batched tau-leaping
sampler and a likelihood bound. Depends on torch and rapidfuzz only; never on transformers.
"""

from .alignment import (
    BLANK,
    AlignedBatch,
    align,
    align_batch,
    align_layouts,
    couple_noise,
    strip_blanks,
)
from .likelihood import NLLBound, nll_bound
from .loss import LossOutput, edit_flow_loss, reverse_flow_loss
from .model_protocol import DEL, INS, SUB, EditFlowOutput, RateModel, RatesFirst, RatesFirstModel
from .path import PathSample, sample_path, sample_time
from .ragged import path_totals, select_rows, split_by_length
from .sampler import BatchSampler
from .sampler_types import EditOp, GenerationResult, SamplingParams, SequenceProgress, TraceStep
from .scheduler import SCHEDULERS, Scheduler, make_scheduler
from .spans import Given, Hole, prefix_layout, rate_mask, sequence_layout
from .spec import parse_spec
from .token_sampling import sample_tokens
from .x0 import X0_SAMPLERS, X0Sampler, make_x0_sampler

__all__ = [
    "BLANK",
    "DEL",
    "INS",
    "SCHEDULERS",
    "SUB",
    "X0_SAMPLERS",
    "AlignedBatch",
    "BatchSampler",
    "EditFlowOutput",
    "EditOp",
    "Given",
    "Hole",
    "GenerationResult",
    "LossOutput",
    "NLLBound",
    "PathSample",
    "RateModel",
    "RatesFirst",
    "RatesFirstModel",
    "SamplingParams",
    "Scheduler",
    "SequenceProgress",
    "TraceStep",
    "X0Sampler",
    "align",
    "align_batch",
    "align_layouts",
    "couple_noise",
    "edit_flow_loss",
    "make_scheduler",
    "make_x0_sampler",
    "nll_bound",
    "parse_spec",
    "path_totals",
    "prefix_layout",
    "rate_mask",
    "reverse_flow_loss",
    "sample_path",
    "sample_time",
    "sample_tokens",
    "select_rows",
    "sequence_layout",
    "split_by_length",
    "strip_blanks",
]

# localized paths (paper appendix C.1)
from .localized import (  # noqa: E402
    clamped_edit_weight,
    edit_hazard_factors,
    first_passage_times,
    hazard_factor,
    localized_sites,
    sample_ignition_times,
    sample_switch_times,
    switched_neighbours,
)

__all__ += [
    "clamped_edit_weight",
    "edit_hazard_factors",
    "first_passage_times",
    "hazard_factor",
    "localized_sites",
    "sample_ignition_times",
    "sample_switch_times",
    "switched_neighbours",
]
