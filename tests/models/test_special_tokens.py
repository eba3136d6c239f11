"""The anchor and banned-token rules (editflow_models.special_tokens), used by conversion,
training, generation and serving alike."""

from types import SimpleNamespace

from editflow_models.special_tokens import anchor_token_id, banned_token_ids

from .conftest import tiny_tokenizer


def test_anchor_is_bos_else_cls_else_none():
    assert anchor_token_id(SimpleNamespace(bos_token_id=5, cls_token_id=2)) == 5
    assert anchor_token_id(SimpleNamespace(bos_token_id=None, cls_token_id=2)) == 2
    assert anchor_token_id(SimpleNamespace(bos_token_id=0, cls_token_id=2)) == 0  # 0 is an id
    assert anchor_token_id(SimpleNamespace()) is None


def test_banned_is_every_special_token_but_eos():
    tok = tiny_tokenizer()  # BERT-style: [PAD] [UNK] [CLS] [SEP] [MASK]
    special = set(tok.all_special_ids)
    eos = tok.sep_token_id
    banned = banned_token_ids(tok, eos)
    assert banned == sorted(special - {eos}) and eos not in banned and len(banned) >= 4
    fake = SimpleNamespace(all_special_ids=[3, 1, 2, 1], eos_token_id=2)
    assert banned_token_ids(fake) == [1, 3]
