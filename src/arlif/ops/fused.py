"""Every family's fused custom ops in one namespace; importing this module registers them and their fused
backends. Each is defined in its family's ``op.py`` and is also ``torch.ops.arlif.<name>``."""

from .arlif.op import arlif_bwd, arlif_fwd
from .clif.op import clif_bwd, clif_fwd
from .leaky.op import lif_bwd, lif_fwd, plif_bwd, plif_fwd

__all__ = ["arlif_fwd", "arlif_bwd", "lif_fwd", "lif_bwd", "plif_fwd", "plif_bwd", "clif_fwd", "clif_bwd"]
