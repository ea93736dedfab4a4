"""The first cell every notebook shares: device, seed, threads, output folder and claims ledger."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import plotting, runtime
from .claims import ClaimLedger
from .experiments import run_cache


@dataclass
class Session:
    """What a notebook needs after its parameters cell."""

    notebook: str
    profile: str
    device: torch.device
    out: Path
    generator: torch.Generator
    claims: ClaimLedger

    def save_claims(self) -> None:
        """Write ``claims.json`` and print one line per claim (and any declared claim not recorded)."""
        self.claims.save(self.out)


def setup(notebook_id: str, *, profile: str, device: str = "auto", seed: int = 0,
          output_dir: str = "", cpu_threads: int = 0) -> Session:
    """Resolve the device, seed everything, set CPU threads (0: leave as is), prepare the output folder
    and share solver runs with the other notebooks writing beside it (:mod:`.experiments.run_cache`).

    >>> nb = setup("C2", profile=profile, device=device, seed=seed, output_dir=output_dir)  # doctest: +SKIP
    >>> nb.claims.measure("C2.1", accuracy, at={"epochs": 200})  # doctest: +SKIP
    """
    dev = runtime.resolve_device(device)
    generator = runtime.seed_everything(seed)
    if cpu_threads < 0:
        raise ValueError(f"invalid cpu_threads {cpu_threads!r}; expected 0 (leave as is) or a positive count")
    if dev.type == "cpu" and cpu_threads:
        torch.set_num_threads(cpu_threads)
    out = runtime.prepare_output_dir(notebook_id, output_dir)
    run_cache.activate(out, notebook_id)
    plotting.set_style()
    return Session(notebook_id, profile, dev, out, generator, ClaimLedger(notebook_id, profile=profile, device=dev))
