"""``arlif info``: what this installation can run."""

from __future__ import annotations

import platform


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show versions, devices, the registered neurons and the backends available here",
        description="Print library versions, the available devices, every registered neuron name (what "
        "--neuron and configs accept) with a one-line description, and, for each kernel family, the "
        "backends that can run on CPU and CUDA tensors here.",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    import arlif
    from arlif.neurons import neuron_entries
    from arlif.ops.backends import available_backends

    print(f"arlif {arlif.__version__}  torch {torch.__version__}  python {platform.python_version()}")
    cuda = torch.cuda.is_available()
    print(f"CUDA available: {cuda}" + (f" ({torch.cuda.get_device_name(0)})" if cuda else ""))
    devices = ["cpu"] + (["cuda"] if cuda else [])
    entries = neuron_entries(aliases=True)
    width = max(len(e.name) for e in entries)
    print("neurons (--neuron NAME, neuron: NAME in a config):")
    for e in entries:
        print(f"  {e.name:{width}s}  {e.description}")
    print("backends by kernel family (the first one is what backend='auto' runs):")
    for family, names in _families(entries).items():
        for dev in devices:
            print(f"  {family:6s} on {dev:4s}: backends {available_backends(family, dev)}  ({', '.join(names)})")
    return 0


def _families(entries) -> dict[str, list[str]]:
    """kernel family (a class's neuron_kind) -> the names that run on it"""
    out: dict[str, list[str]] = {}
    for e in entries:
        out.setdefault(e.cls.neuron_kind, []).append(e.name)
    return out
