"""Dataset resolution and loaders: IDX images and Planetoid/Coauthor graphs.

See :mod:`beyond_backprop.data.sources` for the search order and README for how to supply data.
"""

from .images import IMAGE_DATASETS, ImageData, load_images, read_idx
from .planetoid import GRAPH_DATASETS, GraphData, load_planetoid, normalized_adjacency
from .sources import DATA_ENV, DATASETS, DataCorrupt, DataMissing, Resolved, resolve

__all__ = [
    "DATA_ENV", "DATASETS", "DataCorrupt", "DataMissing", "GRAPH_DATASETS", "GraphData",
    "IMAGE_DATASETS", "ImageData", "Resolved", "load_images", "load_planetoid",
    "normalized_adjacency", "read_idx", "resolve",
]
