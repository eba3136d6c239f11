"""Configuration dataclasses: model, data, and ``TrainingArguments`` plus the Edit Flow fields.

Every field carries ``metadata={"help": ...}`` so ``editflow-train pt --help`` documents it.
The same three dataclasses serve ``pt`` and ``sft``; the subcommand only decides how records
become sequences. A YAML file (``--config``) sets any field by its flat name; the command line
overrides it (see ``cli.py``).

Defaults that differ from ``TrainingArguments``: ``remove_unused_columns=False`` (the collator
needs the raw token lists). ``report_to`` keeps the Trainer's ``"none"``: TensorBoard only on
request (``--report_to tensorboard``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments


def _help(text: str, **kwargs) -> dict:
    return {"metadata": {"help": text}, **kwargs}


@dataclass
class ModelArguments:
    """Which model to train: an Edit Flow checkpoint, a source model to convert, or from scratch."""

    model_name_or_path: str | None = field(
        default=None,
        **_help(
            "Edit Flow checkpoint (dir or hub id) to continue from, or a masked-LM / a2d decoder / "
            "LLaDA / Dream checkpoint to convert first. Unset: build a model from scratch."
        ),
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        **_help(
            "Tokenizer dir or hub id. Unset: the model's own tokenizer, or (from scratch) a "
            "byte-level BPE trained on the training data and cached in <output_dir>/tokenizer."
        ),
    )
    tokenizer_vocab_size: int = field(
        default=2048, **_help("Vocabulary size of the locally trained BPE tokenizer.")
    )
    arch: str = field(
        default="modernbert",
        **_help("Backbone family of a from-scratch model (modernbert, bert, qwen3, llama, ...)."),
    )
    hidden_size: int = field(default=256, **_help("From scratch: hidden size H."))
    num_layers: int = field(default=4, **_help("From scratch: number of layers."))
    num_heads: int = field(default=4, **_help("From scratch: attention heads."))
    intermediate_size: int | None = field(
        default=None, **_help("From scratch: MLP width (default 4 * hidden_size).")
    )
    max_position_embeddings: int = field(
        default=1024, **_help("From scratch: longest sequence the model accepts.")
    )
    time_conditioning: bool = field(
        default=True,
        **_help("From scratch / conversion: add an embedding of t to the inputs."),
    )
    given_embedding: bool = field(
        default=False,
        **_help(
            "From scratch / conversion: add a learned embedding of the given tokens (anchor, "
            "prompt), zero at init; lets the model tell the prompt from what it wrote, and "
            "guidance compare runs with and without it."
        ),
    )
    reverse_rates: bool = field(
        default=False,
        **_help(
            "From scratch / conversion: the rate head also predicts reverse rates, trained with "
            "the same loss backward in time (self-correction)."
        ),
    )
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        **_help(
            "Dtype of the weights being trained: auto (as saved; from scratch fp32), fp32, or "
            "bf16 (pure bf16 weights: half the memory, coarser updates). fp16 weights cannot be "
            "trained stably and are refused: use fp32 weights with --fp16 true. Not the same as "
            "--bf16 / --fp16, which run the forward under autocast over fp32 weights."
        ),
    )
    attn_implementation: str | None = field(
        default=None, **_help("Attention kernel: sdpa, eager, flex_attention (default: HF's).")
    )
    lora: bool = field(
        default=False,
        **_help(
            "Train LoRA adapters on the backbone (new heads train in full); merged at the end."
        ),
    )
    lora_r: int = field(default=16, **_help("LoRA rank."))
    lora_alpha: int = field(default=32, **_help("LoRA alpha (scaling numerator)."))
    lora_dropout: float = field(default=0.0, **_help("LoRA dropout."))
    lora_target_modules: list[str] | None = field(
        default=None, **_help("Backbone Linear names to adapt (default: every Linear).")
    )
    load_in_4bit: bool = field(
        default=False,
        **_help("Load the backbone in 4-bit NF4 (bitsandbytes) for QLoRA; needs --lora."),
    )


@dataclass
class DataArguments:
    """What to train on and how records become sequences."""

    dataset: str = field(
        **_help(
            "Dataset spec: a hub id or a local file/folder (txt, json, jsonl, parquet, csv); "
            "'name[train:1000,test:100]' slices disjoint train/test sets; 'a+b' concatenates."
        ),
    )
    eval_dataset: str | None = field(
        default=None,
        **_help(
            "Separate evaluation dataset spec (default: the 'test' slice of --dataset, if any)."
        ),
    )
    text_field: str = field(default="text", **_help("pt: the column holding the text."))
    source_field: str | None = field(
        default=None,
        **_help(
            "pt: a column holding a draft of each text (draft -> final pairs): the model learns "
            "to edit the draft into the text (x0 = the draft, aligned optimally). One example "
            "per record, never packed; pairs longer than max_length are dropped."
        ),
    )
    txt_sample_by: Literal["line", "paragraph", "document"] = field(
        default="paragraph", **_help("How a .txt file splits into documents.")
    )
    max_length: int = field(
        default=512, **_help("Longest x1 in tokens, anchor and EOS included (pt: chunk size).")
    )
    pack: bool = field(
        default=True,
        **_help(
            "pt: concatenate documents into max_length chunks (true), or train on one x1 per "
            "document, [BOS] + text + [EOS], long ones cut into max_length pieces (false; for "
            "sentence-level data)."
        ),
    )
    streaming: bool = field(
        default=False, **_help("Stream the dataset instead of downloading it (needs max_steps).")
    )
    sft_truncation: Literal["drop", "truncate_response"] = field(
        default="drop",
        **_help(
            "sft: what to do with a record longer than max_length. 'drop' skips it; "
            "'truncate_response' cuts the response's end. A prompt is never cut: a record whose "
            "prompt alone does not fit is always dropped, and drops are reported."
        ),
    )
    preprocessing_num_workers: int | None = field(
        default=None, **_help("Processes for tokenisation (datasets.map num_proc).")
    )


@dataclass
class EditFlowTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the Edit Flow path and loss settings and end-of-run samples."""

    x0_sampler: str | None = field(
        default=None,
        **_help(
            "Source distribution x0: 'empty', 'masks[length:64]', 'uniform[length:32-96]', "
            "'masks[mean:64]'. Default: the model config's (from scratch: 'empty')."
        ),
    )
    scheduler: str | None = field(
        default=None,
        **_help(
            "kappa scheduler: 'linear', 'cubic' (t^3), 'poly[n:2]', 'cosine'. "
            "Default: the model config's (from scratch: 'cubic')."
        ),
    )
    lam_prop: float | None = field(
        default=None,
        **_help(
            "Localized paths (Edit Flows appendix C.1): a switched alignment column also "
            "switches each neighbour at this rate, so edits cluster; 0: plain paths. "
            "Default: the model config's (from scratch: 0). Not with reverse_rates."
        ),
    )
    t_eps: float = field(default=1e-3, **_help("t is drawn from U[0, 1 - t_eps]."))
    max_weight: float = field(
        default=20.0,
        **_help("Clamp on the loss weight w(t) (training only; sampling never clamps)."),
    )
    normalize: Literal["batch_tokens", "none", "x1_length"] = field(
        default="batch_tokens",
        **_help(
            "Loss normalisation: 'batch_tokens' (default, unbiased rates), 'none', or "
            "'x1_length' (per-row length, the reference's; biases rates towards short targets)."
        ),
    )
    coupling: Literal["noise", "optimal"] = field(
        default="noise",
        **_help(
            "Alignment of x0 and x1: 'noise' (closed form, for x0 without real tokens) or "
            "'optimal' (Levenshtein)."
        ),
    )
    gaps: Literal["random", "left", "right"] = field(
        default="random", **_help("Where the 'noise' coupling puts insertions / deletions.")
    )
    cond_drop: float = field(
        default=0.1,
        **_help(
            "Probability of dropping a row's prompt (sft prompts, pt conditioning prefixes): "
            "the model also learns the unconditional rates classifier-free guidance needs "
            "(--guidance when sampling). 0: never."
        ),
    )
    fim: float = field(
        default=0.0,
        **_help(
            "Fill in the middle: the probability that a row keeps a random prefix and suffix of "
            "its text given and only the middle is a hole (two uniform cut points), so the model "
            "learns to fill a hole (generate --suffix, the server's suffix). 0: never."
        ),
    )
    edit_x0: str | None = field(
        default=None,
        **_help(
            "An x0 drawn from x1 for repair training: 'corrupt[p:0.2]' (x1 with random "
            "insertions, deletions and substitutions, about p per token), used for a share "
            "edit_share of the rows instead of the noise x0 and aligned optimally."
        ),
    )
    edit_share: float = field(
        default=0.5,
        **_help(
            "Share of rows whose x0 is edit_x0 (when edit_x0 is set); the rest use x0_sampler."
        ),
    )
    cond_prefix: bool = field(
        default=False,
        **_help(
            "pt: freeze a random prefix of each chunk (a share c^3, c ~ U[0, 1]) as its prompt, "
            "so a pretrained model is prompted in-distribution and guidance works after pt."
        ),
    )
    max_tokens_per_forward: int = field(
        default=0,
        **_help(
            "Ragged batches: run each batch as a few forwards over rows of similar x_t length, "
            "each at most this many padded tokens (rows x longest row), instead of one forward "
            "padded to the longest row (0: off). Same rows, loss and gradient per step; pays "
            "when x_t lengths vary (x0 = empty). At least max_length."
        ),
    )
    max_train_seconds: float | None = field(
        default=None,
        **_help(
            "Stop training after this much wall time (the run still saves and samples); "
            "max_steps still bounds it. Keeps the CPU quickstart within its time on slow machines."
        ),
    )
    torch_num_threads: int | None = field(
        default=None,
        **_help(
            "torch intra-op threads of the training process (default: torch's). 1 avoids the "
            "OpenMP spin-wait slowdown on a CPU shared with other processes."
        ),
    )
    nll_bound_samples: int = field(
        default=4,
        **_help(
            "Monte Carlo samples per held-out sequence for the likelihood bound (bits per "
            "character), computed at each evaluation and after training on the test split "
            "(0: never)."
        ),
    )
    nll_bound_max_sequences: int = field(
        default=256, **_help("Held-out sequences scored by the likelihood bound (the first N).")
    )
    num_samples: int = field(default=4, **_help("Samples printed after training (0: none)."))
    sample_steps: int = field(default=64, **_help("Tau-leaping steps per sample."))
    sample_temperature: float = field(default=1.0, **_help("Temperature of Q for samples."))
    sample_top_p: float = field(default=1.0, **_help("Nucleus mass of Q for samples."))
    sample_max_new_tokens: int = field(default=128, **_help("Cap on a sample's length."))
    sample_prompts: list[str] | None = field(
        default=None, **_help("sft: prompts for the end-of-run samples (default: eval records).")
    )
    remove_unused_columns: bool = field(
        default=False, **_help("Kept False: the collator needs the token lists.")
    )


Mode = Literal["pt", "sft"]
