"""Tiny random source models (no downloads) for the editflow-models tests."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

from .standins import DreamStandin, LLaDAStandin  # noqa: E402

VOCAB = 99
SIZES = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
)
MLM_KINDS = ("modernbert", "bert", "roberta")
CAUSAL_KINDS = ("qwen2", "qwen3", "llama")


def randomize_norms(model: torch.nn.Module) -> None:
    """Norm weights / biases away from 1 / 0, so a missed copy shows up in the outputs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))


def tiny_mlm(kind: str, seed: int = 0) -> PreTrainedModel:
    """A random 2-layer masked LM of the given family, in eval mode."""
    torch.manual_seed(seed)
    if kind == "modernbert":
        config = ModernBertConfig(
            **SIZES,
            max_position_embeddings=64,
            local_attention=8,
            global_attn_every_n_layers=2,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            cls_token_id=2,
            sep_token_id=3,
            norm_bias=True,
        )
        model = ModernBertForMaskedLM(config)
    elif kind == "bert":
        model = BertForMaskedLM(BertConfig(**SIZES, max_position_embeddings=64, pad_token_id=0))
    elif kind == "roberta":
        model = RobertaForMaskedLM(
            RobertaConfig(
                **SIZES, max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2
            )
        )
    else:
        raise ValueError(kind)
    randomize_norms(model)
    return model.eval()


def tiny_causal(kind: str, seed: int = 0, tie: bool = False) -> PreTrainedModel:
    """A random 2-layer causal decoder LM of the given family, in eval mode."""
    torch.manual_seed(seed)
    common = dict(
        **SIZES,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=tie,
    )
    model = {
        "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**common)),
        "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(**common, head_dim=8)),
        "llama": lambda: LlamaForCausalLM(LlamaConfig(**common)),
    }[kind]()
    randomize_norms(model)
    return model.eval()


def tiny_qwen3_4bit(seed: int = 0) -> PreTrainedModel:
    """A random 2-layer Qwen3 whose every Linear fits bitsandbytes' CPU 4-bit kernel.

    That kernel (AVX512-BF16 CPUs, Intel and AMD) needs in_features % 64 == 0 and
    out_features % 32 == 0 (``editflow_models.lora.cpu_4bit_incompatible``); SIZES' hidden 32 does
    not. Here: q / o 64 x 64, k / v 64 -> 32, gate / up 64 -> 128, down 128 -> 64.
    """
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=128,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    model = Qwen3ForCausalLM(config)
    randomize_norms(model)
    return model.eval()


def tiny_tokenizer() -> BertTokenizer:
    """A WordPiece tokenizer over VOCAB entries: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    return BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})


def batch(
    seed: int = 0, lengths: tuple[int, ...] = (9, 6, 11), vocab: int = VOCAB, anchor: int = 2
):
    """Right-padded (B, L) ids and mask; position 0 is the anchor."""
    g = torch.Generator().manual_seed(seed)
    L = max(lengths)
    ids = torch.randint(5, vocab - 1, (len(lengths), L), generator=g)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    ids[:, 0] = anchor
    ids[~mask] = 0
    return ids, mask.long()


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Saved tiny source checkpoints by kind (the BERT one has a tokenizer beside it)."""
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for kind in MLM_KINDS:
        tiny_mlm(kind).save_pretrained(root / kind)
        out[kind] = root / kind
    tiny_tokenizer().save_pretrained(root / "bert")
    for kind in CAUSAL_KINDS:
        tiny_causal(kind).save_pretrained(root / kind)
        out[kind] = root / kind
    torch.manual_seed(0)
    out["llada"] = LLaDAStandin().save(root / "llada")
    torch.manual_seed(0)
    out["dream"] = DreamStandin().save(root / "dream")
    return out


@pytest.fixture(scope="session")
def converted(sources, tmp_path_factory) -> dict[str, Path]:
    """Every source converted to an Edit Flow checkpoint."""
    from editflow_models import convert

    root = tmp_path_factory.mktemp("converted")
    return {
        kind: convert(src, root / kind, anchor_token_id=2).output for kind, src in sources.items()
    }


@pytest.fixture(scope="session")
def converted_4bit(tmp_path_factory) -> Path:
    """``tiny_qwen3_4bit`` converted to an Edit Flow checkpoint (the 4-bit tests' model)."""
    from editflow_models import convert

    root = tmp_path_factory.mktemp("converted_4bit")
    tiny_qwen3_4bit().save_pretrained(root / "source")
    return convert(root / "source", root / "qwen3", anchor_token_id=2).output
