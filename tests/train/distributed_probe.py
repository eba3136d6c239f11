"""``editflow_train.cli`` that also records, per process, the x1 sequences of every batch it
collates: ``$EDITFLOW_BATCH_LOG/rank<RANK>.jsonl``, one batch per line.

test_distributed.py launches this file instead of ``-m editflow_train.cli`` to see that both
processes trained, each on its own shard of the data.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from editflow_train.cli import main
from editflow_train.collator import EditFlowCollator

LOG = Path(os.environ["EDITFLOW_BATCH_LOG"]) / f"rank{os.environ.get('RANK', '0')}.jsonl"
collate = EditFlowCollator.__call__


def recording_collate(self, examples):
    with LOG.open("a") as f:
        f.write(json.dumps([[int(i) for i in ex["input_ids"]] for ex in examples]) + "\n")
    return collate(self, examples)


EditFlowCollator.__call__ = recording_collate

if __name__ == "__main__":
    sys.exit(main())
