"""``arlif info``: what this installation can run."""

from __future__ import annotations

import platform


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show versions, devices and the neuron backends available here",
        description="Print library versions, the available devices and, for each neuron, "
        "the backends that can run on CPU and CUDA tensors here.",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    import arlif
    from arlif.ops.backends import available_backends

    print(f"arlif {arlif.__version__}  torch {torch.__version__}  python {platform.python_version()}")
    cuda = torch.cuda.is_available()
    print(f"CUDA available: {cuda}" + (f" ({torch.cuda.get_device_name(0)})" if cuda else ""))
    devices = ["cpu"] + (["cuda"] if cuda else [])
    for neuron in ("arlif", "lif", "plif", "clif"):
        for dev in devices:
            print(f"  {neuron:6s} on {dev:4s}: backends {available_backends(neuron, dev)}")
    return 0
