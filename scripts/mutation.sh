#!/usr/bin/env bash
# Mutation testing of packages/editflow-core against tests/core (mutmut 3; opt-in, not in CI).
#
#   uv run --group mutation bash scripts/mutation.sh              # run every mutant (resumes)
#   uv run --group mutation bash scripts/mutation.sh run 'editflow_core.leap*'   # one module
#   uv run --group mutation bash scripts/mutation.sh retest       # rerun the survivors (new tests)
#   uv run --group mutation bash scripts/mutation.sh results      # list the survivors
#   uv run --group mutation bash scripts/mutation.sh show NAME    # the diff of one mutant
#   uv run --group mutation bash scripts/mutation.sh summary      # killed / total per module
#   uv run --group mutation bash scripts/mutation.sh clean        # forget every result
#
# Any other arguments go to mutmut as they are. Configuration: [tool.mutmut] in the root
# pyproject.toml. mutmut names a module by its path under ./src of the folder it runs in
# (src/editflow_core/leap.py -> editflow_core.leap), so it runs in .mutation/ (git-ignored),
# which holds links to the root pyproject.toml, tests/ and packages/editflow-core/src. Its
# results live in .mutation/mutants/: a second run tests only the mutants without a verdict;
# `retest` reruns the survivors after tests were added; `clean` starts over.
#
# A full run from scratch takes hours on 2 cores (see packages/editflow-core/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
jobs=${MUTATION_JOBS:-$(nproc --all)} # before OMP_NUM_THREADS, which nproc obeys
# one thread per test process: mutmut runs one per core (--max-children), and torch's thread
# pool is neither needed at these sizes nor safe across mutmut's forks
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

if ! python -c "import mutmut" 2>/dev/null; then
    echo "mutmut is not installed: run this as 'uv run --group mutation bash scripts/mutation.sh'" >&2
    exit 2
fi

cmd=${1:-run}
[ $# -gt 0 ] && shift
if [ "$cmd" = clean ]; then
    rm -rf .mutation
    exit 0
fi

mkdir -p .mutation
ln -sfn ../pyproject.toml .mutation/pyproject.toml
ln -sfn ../tests .mutation/tests
ln -sfn ../packages/editflow-core/src .mutation/src
cd .mutation

summary() {
    # killed (killed + timeout) / total per module, from mutmut's own result files
    python - <<'PY'
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

rows, total = [], Counter()
for meta in sorted(Path("mutants/src").rglob("*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"].values()
    c = Counter(status_by_exit_code[code] for code in codes)
    c["dead"] = c["killed"] + c["timeout"]
    c["all"] = len(codes)
    total += c
    rows.append((meta.name.removesuffix(".py.meta"), c))
if not rows:
    raise SystemExit("no results yet: run the mutants first")
print(f"{'module':<16}{'killed':>8}{'total':>7}{'score':>8}  survived  other")
for name, c in rows + [("ALL", total)]:
    other = c["all"] - c["dead"] - c["survived"]
    score = 100 * c["dead"] / c["all"] if c["all"] else 100.0
    print(f"{name:<16}{c['dead']:>8}{c['all']:>7}{score:>7.1f}%  {c['survived']:>8}  {other:>5}")
PY
}

case "$cmd" in
run)
    # a changed source file invalidates the mutants of that file only; mutmut regenerates them
    mutmut run --max-children "$jobs" "$@"
    summary
    ;;
retest)
    # mutmut keeps every verdict; after adding tests, rerun only the mutants that survived (or
    # had no test), by name
    mapfile -t names < <(python - <<'PY'
import json
from pathlib import Path

for meta in sorted(Path("mutants/src").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if code in (0, 5, 33):
            print(name)
PY
)
    if [ ${#names[@]} -eq 0 ]; then
        echo "no survivors to rerun"
    else
        mutmut run --max-children "$jobs" "${names[@]}" > mutants/retest.log 2>&1 || true
        tail -n "$((${#names[@]} + 5))" mutants/retest.log
    fi
    summary
    ;;
summary)
    summary
    ;;
*)
    mutmut "$cmd" "$@"
    ;;
esac
