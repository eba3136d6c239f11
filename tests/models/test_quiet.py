"""editflow_models.quiet holds back exactly the two library start-up messages, nothing else."""

from __future__ import annotations

import logging

import pytest
from editflow_models import quiet


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def collect():
    handlers = {}
    for name in (quiet.BNB_LOGGER, quiet.DEEPSPEED_LOGGER):
        handlers[name] = Collect()
        logging.getLogger(name).addHandler(handlers[name])
    yield handlers
    for name, handler in handlers.items():
        logging.getLogger(name).removeHandler(handler)


def test_only_the_startup_messages_are_held_back(collect, monkeypatch):
    quiet.install()
    quiet.install()  # idempotent: one filter per logger
    for name in (quiet.BNB_LOGGER, quiet.DEEPSPEED_LOGGER):
        assert sum(isinstance(f, quiet._HoldBack) for f in logging.getLogger(name).filters) == 1
    bnb = logging.getLogger(quiet.BNB_LOGGER)
    bnb.warning("%s from kernels-community: %s.", quiet.BNB_MESSAGE, "No module named 'kernels'")
    bnb.warning("something else went wrong")
    assert collect[quiet.BNB_LOGGER].messages == ["something else went wrong"]
    assert quiet.held_back(quiet.BNB_MESSAGE)[-1].endswith("No module named 'kernels'.")

    ds = logging.getLogger(quiet.DEEPSPEED_LOGGER)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    ds.warning(quiet.DEEPSPEED_MESSAGE + ". If you have GPU ...")
    assert collect[quiet.DEEPSPEED_LOGGER].messages == []
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)  # a GPU it failed to detect
    ds.warning(quiet.DEEPSPEED_MESSAGE + ". If you have GPU ...")
    ds.warning("ZeRO stage 3 needs ...")
    assert collect[quiet.DEEPSPEED_LOGGER].messages == [
        quiet.DEEPSPEED_MESSAGE + ". If you have GPU ...",
        "ZeRO stage 3 needs ...",
    ]
