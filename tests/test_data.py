"""Dataset resolution and loaders, on files the tests write and on ../shared/data when present."""

import gzip
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from beyond_backprop import data
from beyond_backprop.data import sources as sources

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def image_root(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


@pytest.fixture(autouse=True)
def no_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.delenv(sources.DOWNLOAD_ENV, raising=False)
    monkeypatch.setattr(sources, "project_root", lambda: tmp_path / "project")
    monkeypatch.setattr(sources, "_debian_fashion_mnist", lambda: None)


def test_idx_round_trip_and_limits(image_root):
    images = data.load_images("mnist", image_root, train_limit=10)
    assert images.x_train.shape == (10, 784) and images.x_test.shape == (5, 784)
    assert float(images.x_train.max()) <= 1.0 and images.y_train.dtype.is_floating_point is False
    assert images.y_test.tolist() == [0, 1, 2, 3, 4]
    assert images.source == "data_dir" and images.label == "MNIST (10 train / 5 test)"


def test_environment_variable_is_second_in_order(image_root, monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV, str(image_root))
    assert data.resolve("mnist").source == f"${data.DATA_ENV}"
    other = tmp_path / "explicit"
    (other / "mnist").mkdir(parents=True)
    for f in (image_root / "mnist").iterdir():
        (other / "mnist" / f.name).write_bytes(f.read_bytes())
    assert data.resolve("mnist", other).source == "data_dir"


def test_missing_dataset_names_every_place_and_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataMissing) as error:
        data.resolve("pubmed", tmp_path / "empty")
    message = str(error.value)
    assert "'pubmed'" in message and "data_dir" in message and "./data" in message
    assert "<root>/planetoid/" in message and "--download" in message


def test_nonexistent_data_dir_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataMissing, match="does not exist"):
        data.resolve("cora", tmp_path / "nowhere")


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.resolve("imagenet")


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name in sources.IDX_FILES:
        (folder / name).write_bytes(b"not the real file")
    with pytest.raises(data.DataCorrupt, match="sha256"):
        data.resolve("fashion-mnist", tmp_path)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(path)


def write_planetoid(folder: Path, name: str) -> None:
    """A 6-node graph in the Planetoid layout: 2 train nodes, 3 test nodes listed out of order."""
    folder.mkdir(parents=True, exist_ok=True)
    eye = np.eye(2, dtype=np.int32)
    allx = sp.csr_matrix(np.arange(9, dtype=np.float32).reshape(3, 3))
    tx = sp.csr_matrix(np.array([[10, 0, 0], [0, 11, 0], [0, 0, 12]], dtype=np.float32))
    graph = defaultdict(list, {0: [1, 1, 0], 1: [0, 2], 2: [1], 3: [4], 4: [3, 5], 5: [4]})
    parts = {"x": allx[:2], "y": eye[[0, 1]], "allx": allx, "ally": eye[[0, 1, 0]], "tx": tx, "ty": eye[[1, 1, 0]],
             "graph": graph}
    for key, value in parts.items():
        with open(folder / f"ind.{name}.{key}", "wb") as handle:
            pickle.dump(value, handle, protocol=2)
    (folder / f"ind.{name}.test.index").write_text("5\n3\n4\n")


def test_planetoid_order_labels_and_clean_adjacency(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SHA256", {})
    write_planetoid(tmp_path / "planetoid", "cora")
    graph = data.load_planetoid("cora", tmp_path)
    # test rows are listed 5, 3, 4: node i gets the features of its own row
    assert graph.features[3].tolist() == [0, 11, 0] and graph.features[5].tolist() == [10, 0, 0]
    assert graph.labels.tolist() == [0, 1, 0, 1, 0, 1]
    dense = graph.adjacency.toarray()
    assert (dense == dense.T).all() and dense.diagonal().sum() == 0 and set(np.unique(dense)) <= {0.0, 1.0}
    assert graph.adjacency.nnz == 2 * 4  # edges 0-1, 1-2, 3-4, 4-5 once each way
    assert graph.idx_train.tolist() == [0, 1] and graph.idx_test.tolist() == [3, 4, 5]


def test_normalized_adjacency_matches_dense_formula():
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    dense = a.toarray() + np.eye(3)
    d = np.diag(dense.sum(1) ** -0.5)
    np.testing.assert_allclose(data.normalized_adjacency(a).toarray(), d @ dense @ d)
    isolated = data.normalized_adjacency(sp.csr_matrix((2, 2)), self_loops=False)
    assert np.isfinite(isolated.toarray()).all()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not present")
class TestSharedData:
    """The real files: content checks from ../shared/data/README.md."""

    def test_fashion_mnist(self):
        images = data.load_images("fashion-mnist", SHARED)
        assert images.x_train.shape == (60000, 784) and images.x_test.shape == (10000, 784)
        assert images.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
        assert float(images.x_train.mean()) == pytest.approx(0.2860, abs=1e-4)
        assert np.bincount(images.y_test.numpy()).tolist() == [1000] * 10

    def test_mnist_subset(self):
        images = data.load_images("mnist-subset", SHARED)
        assert images.label == "MNIST subset (8,000 train / 2,000 test)"
        assert images.y_train[:10].tolist() == [3, 8, 1, 0, 4, 0, 9, 3, 4, 9]

    @pytest.mark.parametrize("name, nodes, directed_edges, classes, unlabelled",
                             [("cora", 2708, 10556, 7, 0), ("citeseer", 3327, 9104, 6, 15)])
    def test_planetoid(self, name, nodes, directed_edges, classes, unlabelled):
        graph = data.load_planetoid(name, SHARED)
        assert graph.features.shape[0] == nodes and graph.adjacency.nnz == directed_edges
        assert graph.num_classes == classes and int((graph.labels < 0).sum()) == unlabelled
        assert (graph.labels[graph.idx_test] >= 0).all()
        assert (len(graph.idx_val), len(graph.idx_test)) == (500, 1000)
