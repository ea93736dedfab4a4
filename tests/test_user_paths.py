"""Relative paths typed by a user, through the real CLI and the real pytest, from another working folder.

Each test starts real kernels on a small notebook (tens of seconds). ``PWD`` is removed from the
environment, so a kernel could not fall back on it: the paths must be made absolute before it starts.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beyond_backprop.data import DataMissing, resolve

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    for candidate in (os.environ.get("BEYOND_BACKPROP_DATA"), ROOT.parent / "shared" / "data"):
        try:
            root = resolve("fashion-mnist", candidate or None, download=False).path.parent
            resolve("cora", root, download=False)
            return root.resolve()
        except DataMissing:
            continue
    pytest.skip("needs Fashion-MNIST and Cora (../shared/data or $BEYOND_BACKPROP_DATA)")


def typed_elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working folder outside the checkout and an environment with a relative data path."""
    folder = tmp_path / "home" / "user"
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PWD"}
    env["BEYOND_BACKPROP_DATA"] = os.path.relpath(data_root(), folder)
    env.pop("BEYOND_BACKPROP_OUTPUT", None)
    return folder, env


def test_the_cli_reads_relative_paths_from_where_it_was_typed(tmp_path):
    folder, env = typed_elsewhere(tmp_path)
    assert not Path(env["BEYOND_BACKPROP_DATA"]).is_absolute()
    done = subprocess.run([sys.executable, str(ROOT / "reproduce.py"), "D5", "C3", "--profile", "smoke",
                           "--device", "cpu", "--output", "results"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (folder / "results" / "REPORT.md").read_text()
    assert "INCOMPLETE" not in report
    assert (folder / "results" / "D5" / "claims.json").is_file()
    assert (folder / "results" / "C3" / "claims.json").is_file()


def test_pytest_reads_relative_paths_from_where_it_was_typed(tmp_path):
    folder, env = typed_elsewhere(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "notebooks" / "D5_dladmm_rho.ipynb")],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
