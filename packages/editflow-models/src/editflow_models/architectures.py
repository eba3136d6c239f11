"""The supported architectures, by ``EditFlowConfig.arch`` and by source ``model_type``.

``ARCHITECTURES`` is the one list of families: the tables of names below (and the ones
``EditFlowConfig`` and ``a2d`` check against) are read from its classes, so adding a family is
one class in its own file and one line here.
"""

from __future__ import annotations

from editflow_models.architecture_base import Architecture
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

#: ``EditFlowConfig.arch`` -> the ``model_type`` of the text config it carries.
ARCH_MODEL_TYPES: dict[str, str] = {
    name: arch.config_class.model_type for name, arch in ARCHITECTURES.items()
}

#: ``model_type`` in a source checkpoint's config.json -> arch name.
SOURCE_MODEL_TYPES: dict[str, str] = {
    arch.source_model_type or name: name for name, arch in ARCHITECTURES.items()
}

#: ``model_type`` of the causal checkpoints ``a2d`` accepts.
A2D_MODEL_TYPES: tuple[str, ...] = tuple(
    arch.source_model_type or name for name, arch in ARCHITECTURES.items() if arch.causal_source
)
