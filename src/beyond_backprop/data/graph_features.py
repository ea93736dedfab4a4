"""Graph-augmented node features ``[P^K H, ..., P H, H]`` (GA-MLP style, as mDLAM's official code builds them).

The official mDLAM code propagates with ``P = Â + I`` where ``Â = D̃^{-1/2}(A+I)D̃^{-1/2}``: PyG's
``gcn_norm`` adds self-loops, then ``add_self_loops`` adds another unit diagonal that ``spmm`` sums in.
Powers are applied with sparse products over all nodes, once, and only the requested rows are kept
before concatenating (the full concatenation for large graphs would not fit in memory).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from .planetoid import normalized_adjacency


def propagation_operator(adjacency: sp.spmatrix, extra_identity: bool = True) -> sp.csr_matrix:
    """``Â + I`` (the official code's operator) or ``Â`` when ``extra_identity`` is false."""
    operator = normalized_adjacency(adjacency, self_loops=True)
    if extra_identity:
        operator = operator + sp.identity(operator.shape[0], format="csr")
    return operator.tocsr()


def augmented_features(
    features: torch.Tensor,
    adjacency: sp.spmatrix,
    rows: torch.Tensor,
    *,
    hops: int = 4,
    extra_identity: bool = True,
) -> torch.Tensor:
    """Rows ``rows`` of ``[P^hops H, ..., P H, H]`` (column blocks, highest power first), float32.

    Args:
        features: node features ``H`` of shape ``[nodes, F]``.
        adjacency: symmetric 0/1 adjacency without self-loops, ``[nodes, nodes]``.
        rows: node indices to keep.
        hops: highest power ``K``; the result has ``(K + 1) F`` columns.
        extra_identity: use ``P = Â + I`` (official code) rather than ``Â``.
    """
    if hops < 0:
        raise ValueError(f"invalid hops {hops!r}; expected >= 0")
    if adjacency.shape[0] != features.shape[0]:
        raise ValueError(f"invalid adjacency of shape {adjacency.shape}; expected {features.shape[0]} nodes")
    operator = propagation_operator(adjacency, extra_identity)
    keep = rows.cpu().numpy()
    current = features.cpu().numpy().astype(np.float64)
    blocks = [current[keep]]
    for _ in range(hops):
        current = operator @ current
        blocks.append(current[keep])
    return torch.from_numpy(np.concatenate(blocks[::-1], axis=1).astype(np.float32))
