"""Locate data shipped with patchwright (persona files, the sandbox image definition).

In a wheel they live in `patchwright/_data/`; in a source checkout they are the
top-level `agents/` and `sandbox/` folders.
"""

from __future__ import annotations

from pathlib import Path


def data_dir(name: str) -> Path:
    """Return the folder `name` ("agents" or "sandbox") from the wheel or the checkout."""
    packaged = Path(__file__).resolve().parent / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"patchwright data folder {name!r} is missing from this installation")
