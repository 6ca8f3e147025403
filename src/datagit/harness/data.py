"""Datasets at a revision as torch datasets: bytes from the content store, decoded lazily.

A `StoreDataset` holds only plain values (records, the content store's folder,
the decoding settings), so DataLoader workers can pickle it; each worker opens
its own read handle on the store. Every read is verified against its address.
"""

from __future__ import annotations

import gc
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from datagit.core.recordarray import RecordArray
from datagit.core.records import Record
from datagit.errors import DatagitError, InvalidInputError
from datagit.harness.metrics import UNLABELLED
from datagit.storage.content import ContentStore

Transform = Callable[[Any], Any]


class ContentReader:
    """Reads a record's bytes; picklable, reopening the store in each process."""

    def __init__(self, root: Path | None, fallback: Callable[[Record], bytes] | None) -> None:
        self.root = root
        self.fallback = fallback
        self._store: ContentStore | None = None
        self._pid = 0

    def __call__(self, record: Record) -> bytes:
        if record.text is not None:
            return record.text.encode()
        if self.root is None:
            assert self.fallback is not None
            return self.fallback(record)
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = ContentStore(self.root), os.getpid()
        return self._store.read(record.content)

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "fallback": self.fallback if self.root is None else None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["fallback"])  # type: ignore[misc]


@dataclass(frozen=True)
class Decoder:
    """Bytes → the example a transform sees: a PIL image, a row dict, or text."""

    dataset: str
    kind: str  # "image", "table" or "text"
    image_mode: str = "RGB"
    image_size: tuple[int, int] | None = None

    def __call__(self, data: bytes, record: Record) -> Any:
        if self.kind == "table":
            return dict(record.fields or {})
        if self.kind == "text":
            return data.decode("utf-8", errors="replace")
        from PIL import Image

        try:
            img: Image.Image = Image.open(io.BytesIO(data))
            img = img.convert(self.image_mode)
        except Exception as exc:
            reason = "not a known image format" if "identify" in str(exc) else str(exc)
            raise InvalidInputError(
                f"{self.dataset}/{record.id} (label {record.label!r}): cannot decode image "
                f"({reason})",
                hint="fix or remove that file, then commit the dataset again",
            ) from None
        if self.image_size is not None:
            h, w = self.image_size
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
        return img


@dataclass(frozen=True)
class ImageToTensor:
    """The built-in image transform: a float CxHxW tensor, scaled to [0, 1] then normalised."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __call__(self, img: Any) -> torch.Tensor:
        arr = np.array(img, dtype=np.uint8)
        t = torch.from_numpy(arr)
        t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        t = t.to(torch.float32).div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return (t - mean) / std


@dataclass(frozen=True)
class RowToTensor:
    """The built-in table transform: the named numeric columns as a float vector,
    normalised as ``(x - mean) / std`` (one value for all columns, or one per column)."""

    dataset: str
    features: tuple[str, ...]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __call__(self, row: dict[str, Any]) -> torch.Tensor:
        out = []
        for col in self.features:
            value = row.get(col)
            try:
                out.append(float(value))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"{self.dataset}: column {col!r} = {value!r} is not a number "
                    f"(example {row.get('__id__')!r})",
                    hint="fix the value, or list only numeric columns in [harness] features",
                ) from None
        x = torch.tensor(out, dtype=torch.float32)
        return (x - torch.tensor(self.mean)) / torch.tensor(self.std)


def freeze_inherited(_worker: int = 0) -> None:
    """A DataLoader worker's first act: move everything it inherited from the parent
    into the collector's permanent generation (O(1)). A full collection in the worker
    would otherwise write to the header of every object the parent holds (a view's
    million records) and copy every page of the parent's heap."""
    gc.freeze()


class StoreDataset(Dataset):
    """A map-style dataset over one dataset at one revision, in id order.

    Items are ``(input, class_index)``, or ``(input, class_index, position)``
    with ``return_index`` (the harness uses positions to name batches).
    """

    def __init__(
        self,
        name: str,
        records: Sequence[Record],
        reader: ContentReader,
        decoder: Decoder,
        transform: Transform,
        classes: list[Any],
        targets: list[int],
        *,
        features: tuple[str, ...] | None = None,
        return_index: bool = False,
    ) -> None:
        self.name = name
        # Packed, not a list of objects: forked DataLoader workers share its pages
        # (see core/recordarray.py); ids are plain strings, which workers never touch.
        self.records: Sequence[Record] = (
            records if isinstance(records, RecordArray) else RecordArray(records)
        )
        self.ids = [r.id for r in records]
        self.reader = reader
        self.decoder = decoder
        self.transform = transform
        self.classes = classes
        self.targets = targets
        self.features = features
        self.return_index = return_index
        self.normalisation: dict[str, Any] | None = None  # set by the harness (train.py)

    def __len__(self) -> int:
        return len(self.records)

    def example(self, i: int) -> Any:
        rec = self.records[i]
        # a numeric row lives in the record itself; its content address names no stored bytes
        data = b"" if self.decoder.kind == "table" else self.reader(rec)
        ex = self.decoder(data, rec)
        if isinstance(ex, dict):
            ex["__id__"] = rec.id
        return ex

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        x = self.transform(self.example(i))
        if self.return_index:
            return x, self.targets[i], i
        return x, self.targets[i]


class StoreIterable(IterableDataset):
    """The same examples streamed in id order, split between DataLoader workers."""

    def __init__(self, inner: StoreDataset) -> None:
        self.inner = inner
        self.classes = inner.classes

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        info = get_worker_info()
        start, step = (info.id, info.num_workers) if info else (0, 1)
        for i in range(start, len(self.inner), step):
            yield self.inner[i]


def to_torch(
    view: Any,
    transform: Transform | None = None,
    *,
    classes: list[Any] | None = None,
    unseen: str = "error",
    image_mode: str = "RGB",
    image_size: tuple[int, int] | None = None,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
    features: Sequence[str] | None = None,
    return_index: bool = False,
    skip_unlabelled: bool = False,
) -> StoreDataset:
    """A ``torch.utils.data.Dataset`` over a `DatasetView` (or anything with
    ``name``, ``records`` and ``read``).

    ``transform`` receives a PIL image (image datasets), a dict of the row's
    columns (tables) or a str (inline text) and returns a tensor; without one,
    images become float CxHxW tensors in [0, 1] (then ``(x - mean) / std``) and
    tables a vector of their numeric columns. Labels map to class indices by
    ``classes`` (default: the view's labels, sorted by their string form); a
    label outside ``classes`` is an error, or with ``unseen="wrong"`` target -1.
    An example without a label gets target `UNLABELLED` (-2), or with
    ``skip_unlabelled`` (training) is left out.
    """
    name = getattr(view, "name", "dataset")
    records: list[Record] = list(view.records)
    if skip_unlabelled:
        records = [r for r in records if r.label is not None]
    kind = dataset_kind(view, records)
    if classes is None:
        classes = sorted({r.label for r in records if r.label is not None}, key=str)
    targets = class_targets(name, records, classes, unseen)
    decoder = Decoder(name, kind, image_mode, image_size)
    if transform is None:
        if kind == "image":
            transform = ImageToTensor(tuple(mean), tuple(std))
        elif kind == "table":
            features = tuple(features) if features else numeric_columns(name, records)
            transform = RowToTensor(name, features, tuple(mean), tuple(std))
        else:
            raise InvalidInputError(
                f"dataset {name!r} holds inline text, which the built-in models cannot read",
                hint="set [harness] transform to a `module:function` that returns a tensor",
            )
    store = getattr(getattr(view, "repo", None), "store", None)
    root = getattr(store, "root", None)
    if getattr(store, "fetch_missing", None) is not None:
        # A partial clone: the reader reopens the store per process, without the
        # on-demand fetch, so what training will read is fetched now, in one batch.
        store.prefetch(r.content for r in records if r.text is None)  # type: ignore[union-attr]
    reader = ContentReader(Path(root) if root else None, None if root else view.read)
    return StoreDataset(
        name,
        records,
        reader,
        decoder,
        transform,
        list(classes),
        targets,
        features=tuple(features) if features else None,
        return_index=return_index,
    )


def to_torch_iterable(view: Any, transform: Transform | None = None, **kw: Any) -> StoreIterable:
    """An ``IterableDataset`` streaming the view in id order (options as `to_torch`)."""
    return StoreIterable(to_torch(view, transform, **kw))


def dataset_kind(view: Any, records: list[Record]) -> str:
    """ "image" for image folders and tables of files, "table" for numeric rows, else "text"."""
    cfg = None
    repo = getattr(view, "repo", None)
    if repo is not None:
        try:
            cfg = repo.dataset_config(view.name, view.rev)
        except DatagitError:
            cfg = None
    if cfg is not None:
        if cfg.layout == "imagefolder" or cfg.file:
            return "image"
        return "text" if cfg.content else "table"
    first = records[0] if records else None
    if first is not None and first.text is not None:
        return "text"
    if first is not None and first.fields and first.source is None:
        return "table"
    return "image"


def class_targets(name: str, records: list[Record], classes: list[Any], unseen: str) -> list[int]:
    index = {_key(c): i for i, c in enumerate(classes)}
    out = []
    for r in records:
        if r.label is None:
            out.append(UNLABELLED)
            continue
        i = index.get(_key(r.label))
        if i is None:
            if unseen != "wrong":
                raise InvalidInputError(
                    f"{name}/{r.id} has label {r.label!r}, which the training data never has",
                    hint="add training examples of that class, or set [harness] unseen_labels = "
                    '"wrong" to count them as errors',
                )
            i = -1
        out.append(i)
    return out


def _key(label: Any) -> str:
    return json.dumps(label, sort_keys=True)  # keeps the label "3" apart from the number 3


def numeric_columns(name: str, records: list[Record]) -> tuple[str, ...]:
    """Columns of the first row whose values parse as numbers."""
    first = (records[0].fields or {}) if records else {}
    cols = []
    for col, value in first.items():
        try:
            float(value)
        except (TypeError, ValueError):
            continue
        if not isinstance(value, bool):
            cols.append(col)
    if not cols:
        raise InvalidInputError(
            f"dataset {name!r} has no numeric columns for the built-in models",
            hint="add numeric feature columns, or set [harness] transform to your own function",
        )
    return tuple(cols)


def column_stats(ds: StoreDataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and (population) std of a table dataset's rows as its transform
    gives them; a constant column gets std 1 so it stays finite."""
    xs = torch.stack([ds.transform(ds.example(i)) for i in range(len(ds))]).double()
    # A non-finite value is left for the loss check to name; it must not spoil its column.
    finite = torch.isfinite(xs)
    n = finite.sum(dim=0).clamp(min=1)
    kept = torch.where(finite, xs, torch.zeros_like(xs))
    mean = kept.sum(dim=0) / n
    centred = torch.where(finite, xs - mean, torch.zeros_like(xs))
    std = (centred.pow(2).sum(dim=0) / n).sqrt()
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def stack(ds: StoreDataset, num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every example once into an input tensor and a target tensor."""
    loader = DataLoader(
        ds,
        batch_size=256,
        shuffle=False,
        num_workers=num_workers,
        worker_init_fn=freeze_inherited,
    )
    xs, ys = [], []
    for batch in loader:
        xs.append(batch[0])
        ys.append(batch[1])
    return torch.cat(xs), torch.cat(ys)
