"""editflow-models: Edit Flow heads for Hugging Face backbones and weight-preserving conversion.

Code outside this package imports from here only (``from editflow_models import ...``); the
modules are its inside.

Importing this package registers ``EditFlowConfig`` / ``EditFlowModel`` with ``AutoConfig`` /
``AutoModel`` (model_type "editflow"), so ``AutoModel.from_pretrained(dir)`` loads a checkpoint.
"""

from editflow_models import quiet
from editflow_models.a2d import a2d
from editflow_models.architectures import ARCHITECTURES, SOURCE_MODEL_TYPES
from editflow_models.checkpoint import read_source_config, resolve_source
from editflow_models.configuration import EditFlowConfig
from editflow_models.convert import ConversionReport, build_model_from_scratch, convert
from editflow_models.dtypes import resolve_dtype
from editflow_models.generation import (
    X0_SEED_MIX,
    GenerationSetup,
    Start,
    generation_setup,
    load_generation_setup,
)
from editflow_models.heads import TimeEmbedding, TokenHead
from editflow_models.lora import apply_lora, load_edit_flow_model, lora_config, quantization_config
from editflow_models.modeling import EditFlowModel, EditFlowModelOutput
from editflow_models.prompting import encode_text, eos_token_id, prefix_ids, render_chat
from editflow_models.special_tokens import anchor_token_id, banned_token_ids
from editflow_models.tokenizer import train_bpe_tokenizer

quiet.install()  # before anything imports peft / bitsandbytes or deepspeed (see quiet.py)

__all__ = [
    "ARCHITECTURES",
    "SOURCE_MODEL_TYPES",
    "ConversionReport",
    "EditFlowConfig",
    "EditFlowModel",
    "EditFlowModelOutput",
    "GenerationSetup",
    "Start",
    "X0_SEED_MIX",
    "TimeEmbedding",
    "TokenHead",
    "a2d",
    "anchor_token_id",
    "apply_lora",
    "banned_token_ids",
    "build_model_from_scratch",
    "convert",
    "encode_text",
    "eos_token_id",
    "generation_setup",
    "load_edit_flow_model",
    "load_generation_setup",
    "lora_config",
    "prefix_ids",
    "quantization_config",
    "quiet",
    "read_source_config",
    "render_chat",
    "resolve_dtype",
    "resolve_source",
    "train_bpe_tokenizer",
]
