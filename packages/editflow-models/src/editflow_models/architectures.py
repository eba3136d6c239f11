"""The supported architectures, by ``EditFlowConfig.arch`` and by source ``model_type``."""

from __future__ import annotations

from editflow_models.arch import Architecture
from editflow_models.bert import BertArch, RobertaArch, XLMRobertaArch
from editflow_models.decoder import DecoderArch, Qwen2Arch, Qwen3Arch
from editflow_models.dream import DreamArch
from editflow_models.llada import LLaDAArch
from editflow_models.modernbert import ModernBertArch

ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        ModernBertArch(),
        BertArch(),
        RobertaArch(),
        XLMRobertaArch(),
        Qwen2Arch(),
        Qwen3Arch(),
        DecoderArch(),
        LLaDAArch(),
        DreamArch(),
    )
}

#: ``model_type`` in a source checkpoint's config.json -> arch name.
SOURCE_MODEL_TYPES: dict[str, str] = {
    "modernbert": "modernbert",
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "xlm-roberta",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "llama": "llama",
    "llada": "llada",
    "Dream": "dream",
}
