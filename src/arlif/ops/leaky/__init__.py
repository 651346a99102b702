"""LIF with soft or hard reset and PLIF (docs/neurons.md#lif, #plif): one leaky integrator ``H = k·V + x``,
with ``k`` = λ for LIF and ``1 - σ(w)`` for PLIF, so the two neurons share this folder's kernels. The files are
named as in every family folder (see :mod:`arlif.ops.arlif`)."""
