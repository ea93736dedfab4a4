"""IDX image datasets (Fashion-MNIST, MNIST, the real 10k MNIST subset) as float tensors."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..problem import Problem, Split
from .sources import resolve, spec

IMAGE_DATASETS = ("fashion-mnist", "mnist", "mnist-subset")


def read_idx(path: Path) -> np.ndarray:
    """Read a gzip-compressed unsigned-byte IDX file (big-endian header) into an array."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{Path(path).name} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{Path(path).name}: header says {shape} but holds {data.size} values")
    return data.reshape(shape)


@lru_cache(maxsize=8)
def _read_split(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder.name}/{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


@dataclass(frozen=True)
class ImageData:
    """Flattened images in [0, 1] (float32, N×784) and int64 labels, with provenance."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str

    @property
    def label(self) -> str:
        """How results on this data must be labelled, e.g. ``MNIST subset (8,000 train / 2,000 test)``."""
        return f"{spec(self.name).label} ({len(self.y_train):,} train / {len(self.y_test):,} test)"

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.name, self.x_train.to(device), self.y_train.to(device),
                         self.x_test.to(device), self.y_test.to(device), self.source)

    def problem(self, classes: int = 10) -> Problem:
        """The training images as a solver :class:`~beyond_backprop.problem.Problem`, the test images as
        its split ``test``."""
        return Problem(Split(self.x_train, self.y_train), {"test": Split(self.x_test, self.y_test)}, classes=classes)


def load_images(name: str, data_dir: str | os.PathLike | None = None, *, train_limit: int | None = None,
                test_limit: int | None = None, download: bool | None = None) -> ImageData:
    """Load an IDX dataset; ``*_limit`` keeps the first N samples of a split (files are not reshuffled)."""
    if name not in IMAGE_DATASETS:
        raise ValueError(f"invalid image dataset {name!r}; expected one of {', '.join(IMAGE_DATASETS)}")
    for limit in (train_limit, test_limit):
        if limit is not None and limit < 1:
            raise ValueError(f"invalid limit {limit!r}; expected a positive number of samples or None")
    found = resolve(name, data_dir, download)
    tensors = []
    for prefix, limit in (("train", train_limit), ("t10k", test_limit)):
        images, labels = _read_split(found.path, prefix)
        images, labels = images[:limit], labels[:limit]
        x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
        tensors += [x, torch.from_numpy(labels.astype(np.int64))]
    return ImageData(name, *tensors, source=found.source)
