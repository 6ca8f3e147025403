"""`DatasetView`: one dataset at one revision, as users' Python and the harness read it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from datagit.core.records import Record, encode_lines

if TYPE_CHECKING:
    from datagit.api.repo import Repo


class DatasetView:
    """The records of ``name`` at ``rev``, sorted by id, with their bytes on demand.

    The record list is read once (a commit is immutable); content is read from
    the store lazily and verified on every read.
    """

    def __init__(self, repo: Repo, name: str, rev: str = "HEAD") -> None:
        self.repo = repo
        self.name = name
        self.rev = rev
        self.commit = repo.resolve(rev) if rev not in (":workspace", ":stage") else None
        self.tree = repo.dataset_tree(name, rev).oid if rev != ":workspace" else None
        self._records: list[Record] | None = None
        self._identity: str | None = None

    @classmethod
    def from_records(
        cls, repo: Repo, name: str, records: Iterable[Record], *, rev: str, commit: str | None
    ) -> DatasetView:
        """A view over any set of records (a fold, a subset, a parent plus part of a change).

        Such a set has no git tree, so its `identity` is a SHA-256 of its encoded
        records: two views holding the same records share cached runs, whatever
        produced them.
        """
        view = cls.__new__(cls)
        view.repo, view.name, view.rev, view.commit, view.tree = repo, name, rev, commit, None
        view._records = sorted(records, key=lambda r: r.id)
        view._identity = None
        return view

    @property
    def identity(self) -> str:
        """What a run key names this data by: the dataset tree id when the view is a
        committed dataset, else ``records:<sha256 of its encoded records>``."""
        if self._identity is None:
            if self.tree is not None:
                self._identity = self.tree
            else:
                digest = hashlib.sha256(encode_lines(self.records)).hexdigest()
                self._identity = f"records:{digest}"
        return self._identity

    def subset(self, keep: Callable[[Record], bool], rev: str | None = None) -> DatasetView:
        """The records for which ``keep`` is true, as a view of their own."""
        return DatasetView.from_records(
            self.repo, self.name, (r for r in self.records if keep(r)),
            rev=rev or f"{self.rev}[subset]", commit=self.commit,
        )  # fmt: skip

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            self._records = sorted(self.repo.records(self.name, self.rev), key=lambda r: r.id)
        return self._records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def read(self, record: Record) -> bytes:
        return self.repo.read(record)

    def labels(self) -> list[Any]:
        """The distinct labels, in a stable order (sorted by their string form)."""
        return sorted({r.label for r in self.records}, key=str)

    def to_torch(self, transform: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """A ``torch.utils.data.Dataset`` over this view (imports torch on first use)."""
        from datagit.harness.data import to_torch

        return to_torch(self, transform=transform, **kwargs)

    def to_torch_iterable(self, transform: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        """A ``torch.utils.data.IterableDataset`` streaming this view in id order."""
        from datagit.harness.data import to_torch_iterable

        return to_torch_iterable(self, transform=transform, **kwargs)
