"""K-fold assignment for out-of-sample predictions: stable per example, across commits.

An example's fold is a hash of its id, never its position: adding, removing or
re-labelling examples moves nothing else between folds, so a fold whose
training records did not change keeps its cached run (see docs/engine.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import xxhash

from datagit.core.records import Record
from datagit.errors import InvalidInputError

_SALT = b"datagit-fold\0"  # keeps folds independent of the manifest's shard hash


def fold_of(example_id: str, k: int) -> int:
    """The fold (0 … k-1) that holds ``example_id`` out."""
    return xxhash.xxh3_64_intdigest(_SALT + example_id.encode()) % k


def check(records: Iterable[Record], k: int, where: str) -> None:
    """Refuse K-fold training that cannot give every example an out-of-sample prediction."""
    if k < 2:
        raise InvalidInputError(f"--folds {k}: need at least 2 folds", hint="use --folds 5")
    counts = Counter(r.label for r in records if r.label is not None)
    if not counts:
        raise InvalidInputError(
            f"{where} has no labelled examples",
            hint="suspects ranks labelled examples; label some first",
        )
    if len(counts) < 2:
        raise InvalidInputError(
            f"{where} has one label only ({next(iter(counts))!r})",
            hint="a classifier needs at least two labels to disagree with one",
        )
    label, n = min(counts.items(), key=lambda kv: (kv[1], str(kv[0])))
    if n < k:
        raise InvalidInputError(
            f"{where}: label {label!r} has {n} example{'s' if n != 1 else ''}, "
            f"fewer than --folds {k}",
            hint=f"use --folds {max(2, n)} or fewer, or add examples of {label!r}",
        )
