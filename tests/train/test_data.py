"""Dataset specs, pt chunking, sft records, the collator, and their error paths."""

from __future__ import annotations

import json

import pytest
import torch
from editflow_core import BLANK, DEL, INS, SUB, make_scheduler, make_x0_sampler
from editflow_models.prompting import encode_text, render_chat
from editflow_train.chunking import chunk_ids, pretraining_dataset
from editflow_train.collator import EditFlowCollator
from editflow_train.sft_records import sft_dataset, sft_example
from editflow_train.sources import load_dataset_spec, parse_dataset_spec
from editflow_train.tokenizer import train_bpe_tokenizer

from .conftest import ALPACA, CHAT, SHAKESPEARE


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(SHAKESPEARE.read_text()[:200_000].split("\n\n"), 400)


def test_tokenizer_specials(tokenizer):
    assert [
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.mask_token_id,
        tokenizer.unk_token_id,
    ] == [0, 1, 2, 3, 4]
    text = "First Citizen:\nSpeak, speak."
    assert tokenizer.decode(encode_text(tokenizer, text)) == text


def test_parse_spec():
    parts = parse_dataset_spec("a.txt[train:10,test:5]+org/name")
    assert [(p.source, p.train, p.test) for p in parts] == [
        ("a.txt", 10, 5),
        ("org/name", None, None),
    ]
    for bad in ("a[train:0]", "a[dev:3]", "a+", "a[train:x]"):
        with pytest.raises(ValueError, match="bad dataset spec"):
            parse_dataset_spec(bad)


def test_slices_are_disjoint_on_a_single_split():
    train, test = load_dataset_spec(f"{ALPACA}[train:100,test:20]")
    assert len(train) == 100 and len(test) == 20
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in test}
    train2, test2 = load_dataset_spec(f"{ALPACA}[test:25]")
    assert len(train2) + len(test2) == 175 and len(test2) == 25
    assert not {r["instruction"] for r in train2} & {r["instruction"] for r in test2}


def test_concatenation_and_formats(tmp_path):
    rows = [{"text": f"line {i}"} for i in range(6)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "b.csv").write_text("text\n" + "\n".join(f"csv {i}" for i in range(4)))
    import pandas as pd

    pd.DataFrame({"text": ["pq 0", "pq 1"]}).to_parquet(tmp_path / "c.parquet")
    folder = tmp_path / "txts"
    folder.mkdir()
    (folder / "x.txt").write_text("para one\nstill one\n\npara two")
    (folder / "y.txt").write_text("para three")
    spec = f"{tmp_path / 'a.jsonl'}[train:3]+{tmp_path / 'b.csv'}+{tmp_path / 'c.parquet'}+{folder}"
    train, test = load_dataset_spec(spec, txt_sample_by="paragraph")
    texts = train["text"]
    assert test is None
    assert texts[:3] == ["line 0", "line 1", "line 2"]
    assert texts[3:7] == [f"csv {i}" for i in range(4)] and texts[7:9] == ["pq 0", "pq 1"]
    assert sorted(t.strip() for t in texts[9:]) == ["para one\nstill one", "para three", "para two"]


def test_streaming_slices():
    train, test = load_dataset_spec(f"{ALPACA}[train:5,test:3]", streaming=True)
    a = [r["instruction"] for r in train]
    b = [r["instruction"] for r in test]
    assert len(a) == 5 and len(b) == 3 and not set(a) & set(b)


def test_chunks_have_bos_and_document_eos(tokenizer):
    train, _ = load_dataset_spec(f"{SHAKESPEARE}[train:50]")
    ds = pretraining_dataset(
        train, tokenizer, anchor_token_id=1, eos_token_id=2, text_field="text", max_length=16
    )
    stream = []
    for ids in ds["input_ids"]:
        assert ids[0] == 1 and 8 < len(ids) <= 16 and 1 not in ids[1:]
        stream += ids[1:]
    expected = []
    for text in train["text"][:10]:
        expected += encode_text(tokenizer, text) + [2]
    assert stream[: len(expected)] == expected
    assert set(ds["frozen"]) == {1}
    assert chunk_ids(list(range(10)), 99, 4) == [[99, 0, 1, 2, 3], [99, 4, 5, 6, 7], [99, 8, 9]]
    assert chunk_ids(list(range(9)), 99, 4) == [[99, 0, 1, 2, 3], [99, 4, 5, 6, 7]]


def test_missing_text_field(tokenizer):
    train, _ = load_dataset_spec(str(ALPACA))
    with pytest.raises(ValueError, match=r"text field 'text' not in the dataset.*instruction"):
        pretraining_dataset(
            train, tokenizer, anchor_token_id=1, eos_token_id=2, text_field="text", max_length=16
        )


def test_sft_prompt_frozen_and_never_cut(tokenizer):
    record = json.loads(CHAT.read_text().splitlines()[1])
    ex = sft_example(
        record, tokenizer, anchor_token_id=1, eos_token_id=2, max_length=512, truncation="drop"
    )
    prompt = encode_text(tokenizer, render_chat(tokenizer, record["messages"][:1], True))
    answer = encode_text(tokenizer, record["messages"][1]["content"])
    assert ex["input_ids"] == [1, *prompt, *answer, 2]
    assert ex["frozen"] == 1 + len(prompt)
    short = len(prompt) + 4
    assert (
        sft_example(
            record,
            tokenizer,
            anchor_token_id=1,
            eos_token_id=2,
            max_length=short,
            truncation="drop",
        )
        is None
    )
    cut = sft_example(
        record,
        tokenizer,
        anchor_token_id=1,
        eos_token_id=2,
        max_length=short,
        truncation="truncate_response",
    )
    assert cut["input_ids"] == [1, *prompt, *answer[:3]] and cut["frozen"] == 1 + len(prompt)
    assert (
        sft_example(
            record,
            tokenizer,
            anchor_token_id=1,
            eos_token_id=2,
            max_length=len(prompt),
            truncation="truncate_response",
        )
        is None
    )


def test_alpaca_equals_chat(tokenizer):
    alpaca = json.loads(ALPACA.read_text().splitlines()[1])
    chat = json.loads(CHAT.read_text().splitlines()[1])
    kw = dict(anchor_token_id=1, eos_token_id=2, max_length=512, truncation="drop")
    assert sft_example(alpaca, tokenizer, **kw) == sft_example(chat, tokenizer, **kw)


def test_sft_dataset_errors(tokenizer):
    train, _ = load_dataset_spec(f"{CHAT}[train:10]")
    with pytest.raises(ValueError, match="exceeds max_length=8"):
        sft_dataset(train, tokenizer, anchor_token_id=1, eos_token_id=2, max_length=8)
    raw, _ = load_dataset_spec(f"{SHAKESPEARE}[train:3]")
    with pytest.raises(ValueError, match="'messages'.*'instruction'"):
        sft_dataset(raw, tokenizer, anchor_token_id=1, eos_token_id=2, max_length=64)


def test_empty_dataset_error(tmp_path):
    from editflow_train.cli import main

    (tmp_path / "empty.txt").write_text("\n\n")
    rc = main(
        [
            "pt",
            "--dataset",
            str(tmp_path / "empty.txt"),
            "--output_dir",
            str(tmp_path / "o"),
            "--use_cpu",
            "true",
            "--max_steps",
            "1",
        ]
    )
    assert rc == 1


def test_streaming_needs_max_steps(tmp_path, capsys):
    from editflow_train.cli import main

    rc = main(
        [
            "pt",
            "--dataset",
            str(SHAKESPEARE),
            "--streaming",
            "true",
            "--output_dir",
            str(tmp_path / "o"),
            "--use_cpu",
            "true",
        ]
    )
    assert rc == 1
    assert "--streaming true needs --max_steps" in capsys.readouterr().err


def test_masks_x0_needs_mask_token():
    with pytest.raises(ValueError, match="needs a mask token"):
        EditFlowCollator(
            make_x0_sampler("masks[length:4]"),
            make_scheduler("cubic"),
            pad_token_id=0,
            mask_token_id=None,
            vocab_size=50,
        )


def test_collator_builds_path_with_frozen_prompt():
    torch.manual_seed(0)
    collator = EditFlowCollator(
        make_x0_sampler("masks[length:3-9]"),
        make_scheduler("cubic"),
        pad_token_id=0,
        mask_token_id=3,
        vocab_size=50,
    )
    examples = [
        {"input_ids": [1, 10, 11, 12, 20, 21, 22, 23], "frozen": 4},
        {"input_ids": [1, 30, 31], "frozen": 1},
    ]
    batches = [collator(examples) for _ in range(50)]
    for b in batches:
        assert b["x_t"].shape[0] == 2 and b["rate_mask"].shape == (*b["x_t"].shape, 3)
        assert (b["x_t"][0, :4] == torch.tensor([1, 10, 11, 12])).all()
        row0 = b["edit_batch"] == 0
        # no edit touches the frozen prompt; insertions start after its last token
        ins = row0 & (b["edit_op"] == INS)
        other = row0 & (b["edit_op"] != INS)
        assert (b["edit_pos"][ins] >= 3).all() and (b["edit_pos"][other] >= 4).all()
        assert (b["edit_token"][b["edit_op"] == DEL] == BLANK).all()
        assert (b["target_len"] == torch.tensor([4, 2])).all()
    ops = torch.cat([b["edit_op"] for b in batches])
    assert {INS, DEL, SUB} <= set(ops.tolist())
