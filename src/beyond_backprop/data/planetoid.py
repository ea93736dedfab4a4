"""Planetoid citation graphs (Cora, Citeseer, PubMed) and Coauthor graphs, public splits."""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from .sources import resolve, spec

GRAPH_DATASETS = ("cora", "citeseer", "pubmed", "coauthor-cs", "coauthor-physics")


@dataclass(frozen=True)
class GraphData:
    """Node features, labels (−1 where a node has none), a clean adjacency and the split indices."""

    name: str
    features: torch.Tensor
    labels: torch.Tensor
    adjacency: sp.csr_matrix
    idx_train: torch.Tensor
    idx_val: torch.Tensor
    idx_test: torch.Tensor
    source: str

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def label(self) -> str:
        return (f"{spec(self.name).label} ({self.features.shape[0]:,} nodes, "
                f"{len(self.idx_train)}/{len(self.idx_val)}/{len(self.idx_test)} train/val/test)")


class _Py2Unpickler(pickle.Unpickler):
    """Load the Python-2 pickles; map the removed ``scipy.sparse.csr`` path if needed."""

    def find_class(self, module: str, name: str):
        if module.startswith("scipy.sparse") and name == "csr_matrix":
            return sp.csr_matrix
        return super().find_class(module, name)


def _load_pickle(path: Path):
    with open(path, "rb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _Py2Unpickler(handle, encoding="latin1").load()


def _clean_adjacency(rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency without self-loops or duplicate edges."""
    adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adj = adj.maximum(adj.T).tolil()
    adj.setdiag(0)
    adj = adj.tocsr()
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    return adj


def _labels_from_onehot(onehot: np.ndarray) -> np.ndarray:
    labels = onehot.argmax(axis=1).astype(np.int64)
    labels[onehot.sum(axis=1) == 0] = -1
    return labels


def _planetoid(folder: Path, name: str) -> tuple:
    obj = {key: _load_pickle(folder / f"ind.{name}.{key}") for key in ("x", "y", "tx", "ty", "allx", "ally", "graph")}
    test_idx = np.loadtxt(folder / f"ind.{name}.test.index", dtype=np.int64)
    test_sorted = np.sort(test_idx)
    tx, ty = obj["tx"], obj["ty"]
    span = test_sorted.max() - test_sorted.min() + 1
    if span > len(test_idx):  # Citeseer: isolated test nodes missing from tx/ty, padded with zero rows
        tx_full = sp.lil_matrix((span, tx.shape[1]), dtype=tx.dtype)
        tx_full[test_sorted - test_sorted.min(), :] = tx
        ty_full = np.zeros((span, ty.shape[1]), dtype=ty.dtype)
        ty_full[test_sorted - test_sorted.min(), :] = ty
        tx, ty = tx_full, ty_full
    features = sp.vstack((obj["allx"], tx)).tolil()
    features[test_idx, :] = features[test_sorted, :]
    onehot = np.vstack((obj["ally"], ty))
    onehot[test_idx, :] = onehot[test_sorted, :]
    n = features.shape[0]
    graph = obj["graph"]
    rows = np.array([u for u, vs in graph.items() for _ in vs], dtype=np.int64)
    cols = np.array([v for vs in graph.values() for v in vs], dtype=np.int64)
    n_train = obj["y"].shape[0]
    return (features.tocsr(), _labels_from_onehot(onehot), _clean_adjacency(rows, cols, n),
            np.arange(n_train), np.arange(n_train, n_train + 500), test_sorted)


def _coauthor(path: Path, seed: int = 0) -> tuple:
    """gnn-benchmark ``.npz``; split of Shchur et al.: 20 train and 30 val nodes per class, rest test."""
    with np.load(path, allow_pickle=True) as f:
        adj = sp.csr_matrix((f["adj_data"], f["adj_indices"], f["adj_indptr"]), shape=tuple(f["adj_shape"]))
        features = sp.csr_matrix((f["attr_data"], f["attr_indices"], f["attr_indptr"]), shape=tuple(f["attr_shape"]))
        labels = f["labels"].astype(np.int64)
    coo = adj.tocoo()
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        train += list(members[:20])
        val += list(members[20:50])
    train, val = np.sort(train), np.sort(val)
    test = np.setdiff1d(np.arange(len(labels)), np.concatenate([train, val]))
    return features, labels, _clean_adjacency(coo.row, coo.col, adj.shape[0]), train, val, test


def load_planetoid(name: str, data_dir: str | os.PathLike | None = None, *, download: bool | None = None) -> GraphData:
    """Load a citation or co-authorship graph with its public split (Kipf-style node order)."""
    if name not in GRAPH_DATASETS:
        raise ValueError(f"invalid graph dataset {name!r}; expected one of {', '.join(GRAPH_DATASETS)}")
    found = resolve(name, data_dir, download)
    if name.startswith("coauthor"):
        parts = _coauthor(found.file(spec(name).files[0]))
    else:
        parts = _planetoid(found.path, name)
    features, labels, adjacency, train, val, test = parts
    as_long = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    return GraphData(name, torch.from_numpy(features.toarray().astype(np.float32)), as_long(labels),
                     adjacency, as_long(train), as_long(val), as_long(test), found.source)


def normalized_adjacency(adjacency: sp.spmatrix, self_loops: bool = True) -> sp.csr_matrix:
    """``D^{-1/2} (A + I) D^{-1/2}`` (Kipf & Welling); rows of isolated nodes stay zero without self-loops."""
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    if self_loops:
        a = a + sp.identity(a.shape[0], format="csr")
    degree = np.asarray(a.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    scale = sp.diags(inv_sqrt)
    return (scale @ a @ scale).tocsr()
