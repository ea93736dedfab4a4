"""Scratch tensors that one solver step reuses across its block updates.

An N×width temporary of a large problem is hundreds of megabytes; the allocator returns such a block to
the system when it is freed, so every fresh one is page-faulted in again (zeroed by the kernel, page by
page) and costs more than the elementwise pass that fills it. A :class:`Workspace` lives for one step:
each named buffer is allocated the first time it is asked for and handed out again after that.
"""

from __future__ import annotations

import torch

OUTER, INNER, INNER_2 = "outer", "inner", "inner_2"


class Workspace:
    """Named buffers, one per (name, shape, dtype), reused for the life of the workspace.

    A caller owns a buffer from the time it asks for it until it next asks for the same name; two
    temporaries alive at once need two names. Few names keep the peak memory down: a block function
    takes its temporaries from :data:`INNER` and :data:`INNER_2` (dead when it returns), its caller
    passes it tensors held in :data:`OUTER` (and in :data:`INNER_2` when the callee does not use it).
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.Size, torch.dtype], torch.Tensor] = {}

    def like(self, name: str, tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The buffer ``name`` with ``tensor``'s shape and device and ``dtype`` (default ``tensor``'s)."""
        key = (name, tensor.shape, dtype or tensor.dtype)
        if key not in self._buffers:
            self._buffers[key] = torch.empty_like(tensor, dtype=dtype or tensor.dtype)
        return self._buffers[key]


def scratch(workspace: Workspace | None, name: str, tensor: torch.Tensor,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """``workspace.like(name, tensor, dtype)``, or a new uninitialised tensor without a workspace."""
    if workspace is None:
        return torch.empty_like(tensor, dtype=dtype or tensor.dtype)
    return workspace.like(name, tensor, dtype)
