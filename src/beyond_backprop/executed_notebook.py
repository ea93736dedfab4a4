"""Executed notebooks as committed beside their figures: no progress bars, stderr or machine paths; errors kept."""

from __future__ import annotations

from pathlib import Path

WIDGET = "application/vnd.jupyter.widget-view+json"  # a progress bar drawn as a widget


def _kept(output: dict) -> bool:
    """Errors and results stay; stderr streams (progress bars, warnings, profiler lines) and widgets go."""
    if output.get("output_type") == "stream":
        return output.get("name") != "stderr"
    return WIDGET not in output.get("data", {})


def strip_machine_paths(nb: dict) -> None:
    """Drop papermill's absolute input/output paths from a notebook's metadata."""
    for key in ("input_path", "output_path"):
        nb.get("metadata", {}).get("papermill", {}).pop(key, None)


def tidy_executed(path: Path) -> None:
    """Rewrite an executed notebook in place as it is committed (see the module docstring)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if _kept(o)]
    strip_machine_paths(nb)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
