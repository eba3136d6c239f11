"""Only for mutation runs (scripts/mutation.sh): run a mutant's tests fastest first.

mutmut runs, for each mutant, the tests that call the mutated function, with -x; most mutants
fail a fast test, so ordering by the durations mutmut recorded (mutmut-stats.json in its work
folder) makes a killed mutant cost its fastest failing test instead of a random prefix of slow
ones. Outside mutmut (MUTANT_UNDER_TEST unset) this does nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("MUTANT_UNDER_TEST"):
        return
    stats = Path("mutmut-stats.json")
    if not stats.exists():
        return
    try:
        durations = json.loads(stats.read_text())["duration_by_test"]
    except (ValueError, KeyError):
        return
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
