"""editflow-models: Edit Flow heads for Hugging Face backbones and weight-preserving conversion.

Importing this package registers ``EditFlowConfig`` / ``EditFlowModel`` with ``AutoConfig`` /
``AutoModel`` (model_type "editflow"), so ``AutoModel.from_pretrained(dir)`` loads a checkpoint.
"""

from editflow_models import quiet
from editflow_models.a2d import a2d
from editflow_models.architectures import ARCHITECTURES, SOURCE_MODEL_TYPES
from editflow_models.configuration import EditFlowConfig
from editflow_models.convert import ConversionReport, build_model_from_scratch, convert
from editflow_models.heads import TimeEmbedding, TokenHead
from editflow_models.lora import apply_lora, load_model, lora_config, quantization_config
from editflow_models.modeling import EditFlowModel, EditFlowModelOutput

quiet.install()  # before anything imports peft / bitsandbytes or deepspeed (see quiet.py)

__all__ = [
    "ARCHITECTURES",
    "SOURCE_MODEL_TYPES",
    "ConversionReport",
    "EditFlowConfig",
    "EditFlowModel",
    "EditFlowModelOutput",
    "TimeEmbedding",
    "TokenHead",
    "a2d",
    "apply_lora",
    "build_model_from_scratch",
    "convert",
    "load_model",
    "lora_config",
    "quantization_config",
]
