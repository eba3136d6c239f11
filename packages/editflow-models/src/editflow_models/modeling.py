"""``EditFlowModel``: a backbone plus a rate head and two token heads.

    h = backbone(x)[last state, after the final norm]           (B, L, H)
    rates      = softplus(Linear(H, 3)(h))                      (B, L, 3): ins, del, sub
    ins_logits = ins_head(h)      at every row, or at ins_rows  (B, L, V) or (N_ins, V)
    sub_logits = sub_head(h)      at every row, or at sub_rows  (B, L, V) or (N_sub, V)

Design decisions:
- The forward matches ``editflow_core.RateModel``: ``*_rows`` are flat indices
  ``b * L + i``; when given, the token heads run only on those gathered rows (training), so no
  (B, L, V) tensor exists. The source LM head is not part of the model: its logits are never
  computed.
- The token heads are untied copies of the source head, transform included: right after
  conversion Q_ins and Q_sub equal the source's masked-LM distribution.
- Time conditioning (optional): an embedding of t is added to every input embedding and the
  backbone runs on ``inputs_embeds``. ``time_conditioned`` tells the sampler whether t matters.
- The "given" embedding (optional, ``config.given_embedding``): a learned vector per token for
  "given" (anchor, prompt, frozen) or not, added to the input embeddings, zero at init; the
  forward takes ``given`` (B, L) bool. ``uses_given`` tells the sampler to pass it.
- Position ids are counted over real tokens, so outputs do not depend on the padding side.
- Dream-style shifted backbones: deletion / substitution at i read the state at i - 1.
- ``forward_rates`` (editflow_core's rates-first sampling protocol) returns the rates of one
  pass and a function that runs the token heads at the rows where an edit fired.
- Registered with ``AutoConfig`` / ``AutoModel`` under model_type "editflow" on import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from editflow_core import RatesFirst
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from editflow_models.architectures import ARCHITECTURES
from editflow_models.configuration import EditFlowConfig
from editflow_models.decoder import check_bidirectional_attention
from editflow_models.heads import TimeEmbedding, TokenHead


@dataclass
class EditFlowModelOutput(ModelOutput):
    """Output of ``EditFlowModel``; same fields as ``editflow_core.EditFlowOutput``.

    Attributes:
        rates: (B, L, 3) non-negative rates (ins, del, sub) at every position.
        ins_logits: (B, L, V), or (N_ins, V) at ``ins_rows``: logits of the token inserted after i.
        sub_logits: (B, L, V), or (N_sub, V) at ``sub_rows``: logits of the token replacing i.
        reverse_rates: (B, L, 3) reverse rates (re-insert, delete, substitute back) when
            ``config.reverse_rates``, else None.
    """

    rates: torch.Tensor | None = None
    ins_logits: torch.Tensor | None = None
    sub_logits: torch.Tensor | None = None
    reverse_rates: torch.Tensor | None = None


class EditFlowModel(PreTrainedModel):
    """An Edit Flow network over any supported backbone (see ``EditFlowConfig.arch``)."""

    config_class = EditFlowConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    #: Modules that are new relative to the source checkpoint (trained in full under LoRA and
    #: kept out of quantisation).
    new_modules: tuple[str, ...] = (
        "ins_head",
        "sub_head",
        "rate_head",
        "time_embed",
        "given_embed",
    )

    def __init__(self, config: EditFlowConfig) -> None:
        super().__init__(config)
        self.arch = ARCHITECTURES[config.arch]
        text_config = config.text_config
        self.backbone = self.arch.build_backbone(text_config)
        self.ins_head = self.arch.build_token_head(text_config)
        self.sub_head = self.arch.build_token_head(text_config)
        # (ins, del, sub) rates, then the reverse ones when the model predicts them
        self.rate_head = nn.Linear(text_config.hidden_size, 6 if config.reverse_rates else 3)
        self.time_embed = (
            TimeEmbedding(text_config.hidden_size) if config.time_conditioning else None
        )
        self.given_embed = (
            nn.Embedding(2, text_config.hidden_size) if config.given_embedding else None
        )
        self.post_init()

    @property
    def has_reverse_rates(self) -> bool:
        """Whether the outputs carry reverse rates (the sampler's corrector needs them)."""
        return bool(self.config.reverse_rates)

    @property
    def uses_given(self) -> bool:
        """Whether the forward reads ``given`` (which tokens are anchor / prompt / frozen)."""
        return self.given_embed is not None

    @property
    def time_conditioned(self) -> bool:
        """Whether the output depends on t (the sampler may reuse a forward when it does not)."""
        return self.time_embed is not None

    def get_input_embeddings(self) -> nn.Module:
        """The backbone's token embedding."""
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        """Replace the backbone's token embedding."""
        self.backbone.set_input_embeddings(value)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Init of the modules this class adds (the backbone's own init handles the backbone).

        Linears: normal(0, initializer_range), zero bias; the time MLP's last Linear (marked
        ``zero_init``) starts at zero, so time conditioning is a no-op until trained.
        """
        std = getattr(self.config.text_config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            if getattr(module, "zero_init", False):
                init.zeros_(module.weight)
            else:
                init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding) and module is self.given_embed:
            init.zeros_(module.weight)  # a no-op until trained
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)

    def init_new_modules(self) -> None:
        """(Re)initialise the rate head, time and given embeddings (used after conversion)."""
        for name in ("rate_head", "time_embed", "given_embed"):
            module = getattr(self, name)
            if module is None:
                continue
            for sub in module.modules():
                for tensor in list(sub.parameters(recurse=False)):
                    tensor._is_hf_initialized = False
                self._init_weights(sub)

    def _states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        t: torch.Tensor | None,
        given: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One backbone pass: rates (B, L, 3) and the (B, L, H) states the token heads read.

        The first state is ins_head's, the second sub_head's (they differ for shifted families).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, L), got shape {tuple(input_ids.shape)}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != "
                f"input_ids shape {tuple(input_ids.shape)}"
            )
        if self.arch.mask_made_bidirectional:
            check_bidirectional_attention(self.backbone.config)

        inputs_embeds = None
        if self.time_embed is not None or self.given_embed is not None:
            inputs_embeds = self.get_input_embeddings()(input_ids)  # (B, L, H)
        if self.time_embed is not None:
            if t is None or t.shape != input_ids.shape[:1]:
                raise ValueError(
                    f"a time-conditioned model needs t of shape ({input_ids.shape[0]},), "
                    f"got {t if t is None else tuple(t.shape)}"
                )
            inputs_embeds = inputs_embeds + self.time_embed(t)[:, None, :]
        if self.given_embed is not None:
            if given is None:  # nothing marked: only the anchor is given
                given = torch.zeros_like(input_ids, dtype=torch.bool)
                given[:, 0] = True
            elif given.shape != input_ids.shape:
                raise ValueError(
                    f"given must be (B, L) = {tuple(input_ids.shape)}, got {tuple(given.shape)}"
                )
            inputs_embeds = inputs_embeds + self.given_embed(given.long())
        if inputs_embeds is not None:
            input_ids = None
        attention_mask = attention_mask.long()
        position_ids = self.arch.position_ids(attention_mask, self.config.text_config)
        hidden = self.arch.hidden_states(
            self.backbone, input_ids, inputs_embeds, attention_mask, position_ids
        )  # (B, L, H)

        raw_rates = self.rate_head(hidden)  # (B, L, 3), or (B, L, 6) with reverse rates
        sub_hidden = hidden
        if self.arch.shifted:
            # state i - 1 predicts token i: del / sub at i read row i - 1 (row 0 reads itself)
            sub_hidden = torch.cat([hidden[:, :1], hidden[:, :-1]], dim=1)  # (B, L, H)
            prev = torch.cat([raw_rates[:, :1], raw_rates[:, :-1]], dim=1)
            token_op = torch.tensor([0, 1, 1, 0, 1, 1][: raw_rates.shape[-1]], dtype=torch.bool)
            raw_rates = torch.where(token_op.to(raw_rates.device), prev, raw_rates)
        return F.softplus(raw_rates), hidden, sub_hidden

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        ins_rows: torch.Tensor | None = None,
        sub_rows: torch.Tensor | None = None,
        given: torch.Tensor | None = None,
    ) -> EditFlowModelOutput:
        """Rates at every position; token logits at every position or at the given rows.

        Args:
            input_ids: (B, L) long; position 0 of each row is the anchor.
            attention_mask: (B, L) bool / long, 1 on real tokens (default: all real).
            t: (B,) float CTMC time; required when ``time_conditioned``, ignored otherwise.
            ins_rows: (N_ins,) long flat indices ``b * L + i``; logits only there when given.
            sub_rows: (N_sub,) long flat indices ``b * L + i``; logits only there when given.
            given: (B, L) bool, the anchor / prompt / frozen tokens (read when ``uses_given``;
                default: the anchor alone).

        Returns:
            ``EditFlowModelOutput`` with rates (B, L, 3) and ins / sub logits.
        """
        rates, hidden, sub_hidden = self._states(input_ids, attention_mask, t, given)
        ins_logits = self._token_logits(self.ins_head, hidden, ins_rows)
        sub_logits = self._token_logits(self.sub_head, sub_hidden, sub_rows)
        return EditFlowModelOutput(
            rates=rates[..., :3],
            ins_logits=ins_logits,
            sub_logits=sub_logits,
            reverse_rates=rates[..., 3:] if rates.shape[-1] == 6 else None,
        )

    def forward_rates(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        t: torch.Tensor | None,
        given: torch.Tensor | None = None,
    ) -> RatesFirst:
        """Sampling pass (``editflow_core.RatesFirstModel``): rates now, token logits on demand.

        Returns:
            ``RatesFirst`` with rates (B, L, 3) and ``token_logits(ins_rows, sub_rows)`` that runs
            the token heads on the kept states of this pass at flat rows (N,) -> (N, V).
        """
        all_rates, hidden, sub_hidden = self._states(input_ids, attention_mask, t, given)
        rates = all_rates[..., :3]
        reverse = all_rates[..., 3:] if all_rates.shape[-1] == 6 else None

        def token_logits(
            ins_rows: torch.Tensor, sub_rows: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                self._token_logits(self.ins_head, hidden, ins_rows),
                self._token_logits(self.sub_head, sub_hidden, sub_rows),
            )

        return RatesFirst(rates, token_logits, reverse)

    @staticmethod
    def _token_logits(
        head: TokenHead, hidden: torch.Tensor, rows: torch.Tensor | None
    ) -> torch.Tensor:
        """Token logits of ``head`` over all of hidden (B, L, H) -> (B, L, V).

        Or over flat rows ``b * L + i`` (N,) -> (N, V).
        """
        if rows is None:
            return head(hidden)
        if rows.dim() != 1:
            raise ValueError(
                f"rows must be (N,) flat indices b * L + i, got shape {tuple(rows.shape)}"
            )
        return head(hidden.flatten(0, 1)[rows])  # (N, H) -> (N, V)


AutoConfig.register("editflow", EditFlowConfig)
AutoModel.register(EditFlowConfig, EditFlowModel)
