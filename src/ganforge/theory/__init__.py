"""Executable versions of the GAN theory: each module checks one result numerically.

Every module exposes ``run(out_dir, seed=0, quick=False) -> dict`` that computes the numbers,
writes its PNG figure(s) into ``out_dir`` and returns::

    {"name": str, "figures": [Path, ...], "numbers": {str: float | list}, "checks": [Check, ...]}

where each check is ``{"check": what, "value": float, "target": "< 0.02", "passed": bool}``, or
``passed`` None for a number that is reported beside the checks but is not a target (a known limit
of a method, with the reason in ``target``).
``quick`` trades precision for time (it is what the test-suite runs); the targets are the same.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: name on the command line -> module name in this package
RESULTS = {
    "optimal-discriminator": "optimal_discriminator",
    "value-at-optimum": "value_at_optimum",
    "saturation": "saturation",
    "wasserstein": "wasserstein",
    "mode-collapse": "mode_collapse",
    "crypto": "crypto",
}


def get(name: str) -> ModuleType:
    """The module of the result called ``name`` on the command line (a key of :data:`RESULTS`)."""
    return importlib.import_module(f"ganforge.theory.{RESULTS[name]}")


__all__ = ["RESULTS", "get"]
