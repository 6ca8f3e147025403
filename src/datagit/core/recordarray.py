"""Records kept as one block of JSON Lines and an offset array, not as objects.

A DataLoader forks its workers, and a forked worker that touches a Python
object (a reference count, or the cycle collector walking every container)
copies the page it sits on: a list of a million `Record` objects became
~80 MiB of private memory per worker. A `RecordArray` is one bytes object and
one int64 array, pages a worker only reads, so every worker shares them with
the parent; a record is decoded when it is asked for (~2 µs).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import orjson

from datagit.core.records import Record


class RecordArray(Sequence[Record]):
    """An immutable sequence of records, decoded one at a time."""

    def __init__(self, records: Iterable[Record]) -> None:
        lines = [orjson.dumps(r.to_dict()) for r in records]
        offsets: array = array("q", [0])  # type: ignore[type-arg]
        total = 0
        for line in lines:
            total += len(line)
            offsets.append(total)
        self._blob = b"".join(lines)
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> Record: ...

    @overload
    def __getitem__(self, i: slice) -> list[Record]: ...

    def __getitem__(self, i: int | slice) -> Record | list[Record]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        line = self._blob[self._offsets[i] : self._offsets[i + 1]]
        return Record.from_dict(orjson.loads(line))

    def __iter__(self) -> Iterator[Record]:
        blob, offsets = self._blob, self._offsets
        for i in range(len(self)):
            yield Record.from_dict(orjson.loads(blob[offsets[i] : offsets[i + 1]]))

    def nbytes(self) -> int:
        """Bytes held: the block and the offsets (a list of objects holds ~5× more)."""
        return len(self._blob) + self._offsets.itemsize * len(self._offsets)
