"""Dataset specs: which records to train and evaluate on.

Grammar: ``part+part+...``; a part is ``source`` or ``source[train:N,test:M]``; a source is a
local file, a local folder (all files of one supported extension) or a hub id.

- Local files load with the ``datasets`` builder of their extension: ``.txt`` (``text``; one
  record per line / paragraph / document), ``.json`` / ``.jsonl`` (``json``), ``.parquet``,
  ``.csv``.
- ``train:N`` keeps the first N training records; ``test:M`` takes M evaluation records from
  the source's ``test`` (or ``validation``) split, else from the records right after the train
  slice, so the two never overlap even when the source has one split.
- Streaming loads lazily (``IterableDataset``); slicing uses ``take`` / ``skip``.
- ``a+b`` concatenates the parts (train with train, test with test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from datasets import (
    Dataset,
    DatasetDict,
    IterableDataset,
    concatenate_datasets,
    load_dataset,
)

BUILDERS = {".txt": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
_PART = re.compile(r"^(?P<source>[^\[\]]+?)(?:\[(?P<slices>[^\[\]]*)\])?$")
AnyDataset = Dataset | IterableDataset


@dataclass(frozen=True)
class SourceSpec:
    """One part of a dataset spec: the source and its optional train / test sizes."""

    source: str
    train: int | None = None
    test: int | None = None


def parse_dataset_spec(spec: str) -> list[SourceSpec]:
    """Split ``"a[train:10,test:5]+b"`` into its parts.

    Raises:
        ValueError: an empty part, a malformed slice, an unknown slice key or a non-positive size.
    """
    parts = []
    for text in spec.split("+"):
        m = _PART.match(text.strip())
        if not text.strip() or m is None:
            raise ValueError(
                f"bad dataset spec {spec!r}: part {text!r} is not 'source[train:N,test:M]'"
            )
        sizes: dict[str, int] = {}
        for item in filter(None, (m.group("slices") or "").split(",")):
            key, _, value = item.partition(":")
            key = key.strip()
            if key not in ("train", "test"):
                raise ValueError(
                    f"bad dataset spec {spec!r}: unknown slice {key!r} (use train / test)"
                )
            if not value.strip().isdigit() or int(value) <= 0:
                raise ValueError(
                    f"bad dataset spec {spec!r}: {key} needs a positive count, got {value!r}"
                )
            sizes[key] = int(value)
        parts.append(SourceSpec(m.group("source").strip(), sizes.get("train"), sizes.get("test")))
    return parts


def _data_files(path: Path) -> tuple[str, list[str]]:
    """The builder name and files of a local file or folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in BUILDERS)
    if not files:
        raise ValueError(f"no {', '.join(BUILDERS)} files in {path}")
    builders = {BUILDERS.get(p.suffix) for p in files}
    if None in builders or len(builders) > 1:
        raise ValueError(
            f"{path}: expected files of one kind among {', '.join(BUILDERS)}, got "
            f"{sorted({p.suffix for p in files})}"
        )
    return builders.pop(), [str(p) for p in files]


def load_source(source: str, streaming: bool, txt_sample_by: str) -> DatasetDict | dict:
    """All splits of one source (local path or hub id)."""
    path = Path(source)
    if path.exists():
        builder, files = _data_files(path)
        kwargs = {"sample_by": txt_sample_by} if builder == "text" else {}
        return load_dataset(builder, data_files={"train": files}, streaming=streaming, **kwargs)
    return load_dataset(source, streaming=streaming)


def _take(ds: AnyDataset, start: int, count: int | None) -> AnyDataset:
    if isinstance(ds, IterableDataset):
        ds = ds.skip(start) if start else ds
        return ds.take(count) if count is not None else ds
    stop = len(ds) if count is None else min(len(ds), start + count)
    return ds.select(range(min(start, len(ds)), stop))


def split_source(splits, spec: SourceSpec) -> tuple[AnyDataset, AnyDataset | None]:
    """(train, test-or-None) of one source after slicing; disjoint by construction."""
    names = list(splits)
    train_name = "train" if "train" in names else names[0]
    held = next((n for n in ("test", "validation") if n in names and n != train_name), None)
    train = _take(splits[train_name], 0, spec.train)
    if spec.test is None:
        return train, None
    if held is not None:
        return train, _take(splits[held], 0, spec.test)
    full = splits[train_name]
    if spec.train is None and not isinstance(full, IterableDataset):
        # no train size: the test records come off the end, the rest trains
        n = len(full)
        if spec.test >= n:
            raise ValueError(f"{spec.source}: test:{spec.test} leaves no training records (of {n})")
        return _take(full, 0, n - spec.test), _take(full, n - spec.test, spec.test)
    if spec.train is None:
        raise ValueError(f"{spec.source}: streaming with test:M needs train:N too")
    return train, _take(full, spec.train, spec.test)


def _concat(parts: list[AnyDataset]) -> AnyDataset:
    """Concatenate parts; string columns of different Arrow types (csv vs json) are unified."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].features
    if first is not None:
        parts = [
            p.cast(first) if p.features is not None and set(p.features) == set(first) else p
            for p in parts
        ]
    return concatenate_datasets(parts)


def load_dataset_spec(
    spec: str, streaming: bool = False, txt_sample_by: str = "paragraph"
) -> tuple[AnyDataset, AnyDataset | None]:
    """Load a dataset spec: (train, test or None)."""
    trains, tests = [], []
    for part in parse_dataset_spec(spec):
        train, test = split_source(load_source(part.source, streaming, txt_sample_by), part)
        trains.append(train)
        if test is not None:
            tests.append(test)
    return _concat(trains), (_concat(tests) if tests else None)
