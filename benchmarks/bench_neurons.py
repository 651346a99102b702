"""Neuron backend benchmark: a thin wrapper around ``arlif bench`` (same options).

    PYTHONPATH=src python benchmarks/bench_neurons.py --device cpu --json benchmarks/cpu.json
"""

import sys

from arlif.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
