"""Recognising Edit Flow checkpoints among sources that need conversion."""

import json

from editflow_train.model_setup import is_editflow_checkpoint


def test_remote_code_sources_are_recognised_as_foreign_without_loading_their_code(tmp_path):
    for model_type in ("llada", "Dream", "modernbert"):
        src = tmp_path / model_type
        src.mkdir()
        (src / "config.json").write_text(
            json.dumps({"model_type": model_type, "auto_map": {"AutoConfig": "x.Y"}})
        )
        assert is_editflow_checkpoint(str(src)) is False
    ef = tmp_path / "ef"
    ef.mkdir()
    (ef / "config.json").write_text(json.dumps({"model_type": "editflow"}))
    assert is_editflow_checkpoint(str(ef)) is True
