"""AR-LIF (docs/neurons.md#ar-lif), all in this folder. Every family folder of :mod:`arlif.ops` has the same
files, named for what they hold:

- ``reference.py``: the step in plain PyTorch, the definition every kernel is tested against;
- ``op.py``: the ``torch.library`` custom ops (forward, BPTT backward, fakes, autograd) and the function
  registered with :mod:`arlif.ops.backends`;
- ``cpu.py`` and ``cpu_kernels.cpp``: the fused CPU kernels, the ctypes side (with the family's C ABI table)
  and the C++ side;
- ``triton_impl.py``: the fused Triton kernels with their launchers (not ``triton.py``, which would read as
  the ``triton`` package itself).

What the families share lives one level up, written once."""
