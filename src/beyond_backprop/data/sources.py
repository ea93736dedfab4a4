"""Find a dataset on disk, check it, and say exactly what to do when it is missing.

Search order (the first folder holding every file wins):

1. the explicit ``data_dir`` (``--data-dir`` / the notebook parameter);
2. the environment variable ``BEYOND_BACKPROP_DATA``;
3. ``./data`` under the project root;
4. Fashion-MNIST only: the install folder of the Debian package ``dataset-fashion-mnist``;
5. a download through torchvision / torch_geometric, only when ``download=True``;
6. otherwise :class:`DataMissing`, naming the dataset, every place looked and how to supply it.

A data root uses the layout of ``../shared/data``: ``<root>/fashion-mnist/``,
``<root>/mnist-subset/``, ``<root>/mnist/``, ``<root>/planetoid/``, ``<root>/coauthor/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..runtime import OUTPUT_ENV, project_root, user_path
from .checksums import SHA256

DATA_ENV = "BEYOND_BACKPROP_DATA"
DOWNLOAD_ENV = "BEYOND_BACKPROP_DOWNLOAD"  # set to 1 by ``reproduce.py --download``
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
PLANETOID_KEYS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")


def make_environment_absolute(typed_in: Path) -> None:
    """Rewrite relative ``$BEYOND_BACKPROP_DATA`` / ``$BEYOND_BACKPROP_OUTPUT`` as absolute, read from ``typed_in``.

    Called once by ``reproduce.py`` and by the pytest configuration, before any kernel starts: a kernel
    runs in another folder and would read a relative path from there.
    """
    for name in (DATA_ENV, OUTPUT_ENV):
        if os.environ.get(name):
            os.environ[name] = os.path.abspath(Path(typed_in) / Path(os.environ[name]).expanduser())


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives under a data root and which files it needs."""

    name: str
    folder: str
    files: tuple[str, ...]
    label: str


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", "fashion-mnist", IDX_FILES, "Fashion-MNIST"),
    "mnist": DatasetSpec("mnist", "mnist", IDX_FILES, "MNIST"),
    "mnist-subset": DatasetSpec("mnist-subset", "mnist-subset", IDX_FILES, "MNIST subset"),
    **{name: DatasetSpec(name, "planetoid", tuple(f"ind.{name}.{k}" for k in PLANETOID_KEYS), label)
       for name, label in (("cora", "Cora"), ("citeseer", "Citeseer"), ("pubmed", "PubMed"))},
    "coauthor-cs": DatasetSpec("coauthor-cs", "coauthor", ("ms_academic_cs.npz",), "Coauthor-CS"),
    "coauthor-physics": DatasetSpec("coauthor-physics", "coauthor", ("ms_academic_phy.npz",), "Coauthor-Physics"),
}


class DataMissing(FileNotFoundError):
    """A dataset could not be found; the message lists where we looked and what to do."""


class DataCorrupt(ValueError):
    """A dataset file does not match its known sha256."""


@dataclass(frozen=True)
class Resolved:
    """A found dataset: its folder and which source supplied it."""

    spec: DatasetSpec
    path: Path
    source: str

    def file(self, name: str) -> Path:
        return self.path / name

    def checksums(self) -> dict[str, str]:
        """sha256 of each file, keyed ``<folder>/<file>``: what a run's results depend on."""
        found = {}
        for name in self.spec.files:
            stat = self.file(name).stat()
            found[f"{self.spec.folder}/{name}"] = _sha256(self.file(name), stat.st_size, stat.st_mtime_ns)
        return found


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` for ``name`` or a ``ValueError`` listing the known names."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def _debian_fashion_mnist() -> Path | None:
    """The folder where ``dataset-fashion-mnist`` installed its files, if installed."""
    if shutil.which("dpkg") is None:
        return None
    try:
        listing = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True,
                                 text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if line.endswith("train-images-idx3-ubyte.gz"):
            return Path(line).parent
    return None


def _candidates(ds: DatasetSpec, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    roots: list[tuple[str, Path]] = []
    if data_dir:
        roots.append(("data_dir", user_path(data_dir)))
    if os.environ.get(DATA_ENV):
        roots.append((f"${DATA_ENV}", user_path(os.environ[DATA_ENV])))
    roots.append(("./data", project_root() / "data"))
    places = [(source, root / ds.folder) for source, root in roots]
    if ds.name == "fashion-mnist":
        debian = _debian_fashion_mnist()
        places.append(("debian dataset-fashion-mnist",
                       debian or Path("/usr/share/dataset-fashion-mnist (package not installed)")))
    return places


def _copy_files(raw: Path, target: Path, files: tuple[str, ...]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(raw / name, target / name)
    return target


def _download(ds: DatasetSpec, data_dir: str | os.PathLike | None) -> Path:
    """Download through torchvision / torch_geometric into the first writable data root."""
    root = user_path(data_dir or os.environ.get(DATA_ENV) or project_root() / "data")
    try:
        if ds.folder in ("fashion-mnist", "mnist"):
            import torchvision.datasets as tvd

            cls = tvd.FashionMNIST if ds.name == "fashion-mnist" else tvd.MNIST
            for train in (True, False):
                cls(str(root / "_torchvision"), train=train, download=True)
            raw = root / "_torchvision" / cls.__name__ / "raw"
        elif ds.folder == "planetoid":
            from torch_geometric.datasets import Planetoid

            names = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
            raw = Path(Planetoid(str(root / "_pyg"), names[ds.name]).raw_dir)
        else:
            from torch_geometric.datasets import Coauthor

            raw = Path(Coauthor(str(root / "_pyg"), "CS" if ds.name == "coauthor-cs" else "Physics").raw_dir)
    except ImportError as error:
        raise DataMissing(f"cannot download {ds.label}: {error.name} is not installed "
                          f"(pip install torchvision torch_geometric)") from error
    except Exception as error:  # network failures come in many types; report them in one line
        raise DataMissing(f"download of {ds.label} failed: {type(error).__name__}: {error}") from error
    return _copy_files(raw, root / ds.folder, ds.files)


def resolve(name: str, data_dir: str | os.PathLike | None = None, download: bool | None = None) -> Resolved:
    """Find dataset ``name`` by the search order of this module and check its files.

    ``download=None`` allows a download only when ``$BEYOND_BACKPROP_DOWNLOAD`` is ``1``.
    """
    ds = spec(name)
    if download is None:
        download = os.environ.get(DOWNLOAD_ENV) == "1"
    if data_dir and not user_path(data_dir).is_dir():
        raise DataMissing(f"data directory {str(data_dir)!r} does not exist; pass an existing "
                          f"folder laid out like ../shared/data (see README, 'Data')")
    places = _candidates(ds, data_dir)
    for source, folder in places:
        if all((folder / f).is_file() for f in ds.files):
            for f in ds.files:
                verify(folder / f, f"{ds.folder}/{f}")
            return Resolved(ds, folder, source)
    if download:
        folder = _download(ds, data_dir)
        return Resolved(ds, folder, "download")
    looked = "; ".join(f"{source}: {folder}" for source, folder in places)
    raise DataMissing(
        f"dataset {name!r} ({ds.label}) not found. Looked in {looked}. "
        f"Put {', '.join(ds.files[:2])}{', ...' if len(ds.files) > 2 else ''} in <root>/{ds.folder}/ and pass "
        f"--data-dir <root> or set {DATA_ENV}=<root>, or pass --download where a network is available"
    )


@lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, key: str) -> None:
    """Check ``path`` against the manifest entry ``key`` (files not in the manifest pass)."""
    expected = SHA256.get(key)
    if expected is None:
        return
    stat = path.stat()
    actual = _sha256(path, stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise DataCorrupt(f"{key} has sha256 {actual[:12]}..., expected {expected[:12]}...; "
                          f"replace the file with a good copy (see ../shared/data/README.md)")
