"""Importing SpikingJelly 2.x for the peer-parity tests, or skipping them cleanly when it is not installed.

SpikingJelly is not a dependency of arlif. The tests need only its neuron, surrogate and dataset modules,
installed without its declared dependencies (see docs/spikingjelly.md for the pip commands).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from types import SimpleNamespace

import pytest


def require_spikingjelly() -> str:
    """SpikingJelly's version, or skip the calling test module when it is absent or not a 2.x release
    (the tests pin the semantics of 2.0: class names, reader behaviour and split rounding)."""
    pytest.importorskip("spikingjelly", reason="SpikingJelly is not installed (test-only, see docs/spikingjelly.md)")
    pytest.importorskip("loguru", reason="SpikingJelly 2.x needs loguru, which is not installed")
    try:
        version = importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if not version.startswith("2."):
        pytest.skip(f"the peer tests check SpikingJelly 2.x, found {version}", allow_module_level=True)
    return version


def import_datasets() -> SimpleNamespace:
    """SpikingJelly's ``datasets.utils``, ``datasets.cifar10_dvs`` and ``datasets.dvs128_gesture`` modules.

    ``spikingjelly/datasets/__init__.py`` imports every dataset module, and two of them need heavy packages at
    import time that the readers we compare against never use: ``speechcommands`` imports torchaudio and
    ``shd`` imports h5py. So when the package is not imported yet, we register it as an empty package (its
    ``__path__`` only, its ``__init__`` not run) and import the three submodules directly; they import only
    numpy, torch, torchvision, tqdm, matplotlib and loguru. The stub stays in ``sys.modules`` for the rest
    of the test session, which nothing else in our suite imports.
    """
    name = "spikingjelly.datasets"
    if name not in sys.modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} not found")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        stub = True
    else:
        stub = False
    try:
        return SimpleNamespace(
            utils=importlib.import_module(f"{name}.utils"),
            cifar10_dvs=importlib.import_module(f"{name}.cifar10_dvs"),
            dvs128_gesture=importlib.import_module(f"{name}.dvs128_gesture"),
        )
    except ImportError:
        if stub:  # do not leave a half-made package behind
            sys.modules.pop(name, None)
        raise
