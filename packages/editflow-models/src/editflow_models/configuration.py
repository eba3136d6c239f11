"""``EditFlowConfig``: a self-describing Edit Flow checkpoint.

Design decisions:
- The backbone's own config is nested as ``text_config`` (the transformers 5 name for a composite
  model's language sub-config, so ``config.get_text_config()`` returns it and generic tooling finds
  ``vocab_size`` / ``hidden_size`` there). Every backbone is a transformers-native class, so a
  checkpoint loads with no remote code: LLaDA is stored as a ``llama`` text config, Dream as
  ``qwen2``.
- ``arch`` names the family (it decides the forward convention, e.g. Dream's shifted predictions);
  ``text_config.model_type`` alone cannot tell LLaDA from a converted Llama.
- Sampling needs the kappa scheduler, the x0 source and the special token ids: they live here as
  plain values (spec strings as understood by ``editflow_core``), so a checkpoint is all a sampler
  needs.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from editflow_models.architectures import ARCH_MODEL_TYPES


def _check_spec(kind: str, spec: str) -> None:
    """Validate a scheduler / x0 spec with editflow-core when it provides the parser."""
    import editflow_core

    make = getattr(editflow_core, f"make_{kind}", None)
    if make is None:  # core without spec parsers yet: keep the string as is
        return
    try:
        make(spec)
    except (ValueError, KeyError) as err:
        raise ValueError(f"invalid {kind} spec {spec!r}: {err}") from err


@strict
class EditFlowConfig(PreTrainedConfig):
    r"""Configuration of an ``EditFlowModel``.

    Its fields are keyword arguments of the constructor and keys of ``config.json``.

    Attributes:
        text_config: the backbone's config (a dict with ``model_type``, or a config object).
        arch: a family name, a key of ``editflow_models.ARCHITECTURES``; its text config's
            ``model_type`` must be the family's (``ARCH_MODEL_TYPES``).
        time_conditioning: add an embedding of t to every input embedding (off for converted
            pretrained models, on by default for models built from scratch).
        given_embedding: add a learned embedding of "this token is given" (anchor, prompt, any
            frozen token) to every input embedding, zero-initialised (off unless asked for).
        reverse_rates: the rate head also predicts reverse rates (self-correction; trained with
            ``editflow_core.reverse_flow_loss``).
        scheduler: kappa scheduler spec for ``editflow_core.make_scheduler`` ("cubic" is t^3).
        x0: source distribution spec for ``editflow_core.make_x0_sampler`` ("empty",
            "masks[length:64]").
        lam_prop: the training paths' spreading rate (localized paths, ``editflow_core.localized``;
            0: plain paths). Training reads it; sampling does not need it.
        anchor_token_id: the token at position 0 of every sequence (BOS / CLS).
        mask_token_id: the mask token (used by mask x0 sources); ``None`` if the vocabulary has
            none.
        pad_token_id: padding token id.
    """

    model_type = "editflow"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="modernbert")
    }

    text_config: dict | PreTrainedConfig | None = None
    arch: str = "modernbert"
    time_conditioning: bool = False
    given_embedding: bool = False
    reverse_rates: bool = False
    scheduler: str = "cubic"
    x0: str = "empty"
    lam_prop: float = 0.0
    anchor_token_id: int | None = None
    mask_token_id: int | None = None
    pad_token_id: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs) -> None:
        super().__post_init__(**kwargs)
        if self.arch not in ARCH_MODEL_TYPES:
            raise ValueError(
                f"unknown arch {self.arch!r}; supported: {', '.join(ARCH_MODEL_TYPES)}"
            )
        expected = ARCH_MODEL_TYPES[self.arch]
        if self.text_config.model_type != expected:
            raise ValueError(
                f"arch {self.arch!r} needs a {expected!r} text_config, "
                f"got {self.text_config.model_type!r}"
            )
        _check_spec("scheduler", self.scheduler)
        _check_spec("x0_sampler", self.x0)
        if not self.lam_prop >= 0:
            raise ValueError(f"lam_prop must be >= 0, got {self.lam_prop!r}")
