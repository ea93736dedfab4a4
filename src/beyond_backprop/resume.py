"""``--resume``: which notebooks' outputs are complete and were produced with the settings of this run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def fingerprint(parameters: dict[str, Any], device_kind: str, data: dict[str, str]) -> dict[str, Any]:
    """What a notebook's outputs depend on: its parameters (seed and profile among them), the device kind
    (``cpu``, ``cuda``) and the sha256 of every data file it reads."""
    return {"parameters": parameters, "device_kind": device_kind, "data": data}


def _normal(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists), so a stored fingerprint compares equal."""
    return json.loads(json.dumps(value, default=str))


def is_complete(folder: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a complete run (manifest saying so, ``claims.json``) with fingerprint ``wanted``."""
    manifest_path = folder / "manifest.json"
    if not (manifest_path.is_file() and (folder / "claims.json").is_file()):
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:  # a run killed while writing it
        return False
    return manifest.get("status") == "complete" and manifest.get("fingerprint") == _normal(wanted)
