"""Peer-parity tests against SpikingJelly 2.x, a test-only dependency: without it every test here skips."""

import sys
from pathlib import Path

# The data tests' writers of the real file formats (tests/data/formats.py) are reused here; pytest only puts
# tests/data on sys.path when it collects a test from that folder, so add it for a run of tests/peer alone.
_DATA_TESTS = str(Path(__file__).resolve().parent.parent / "data")
if _DATA_TESTS not in sys.path:
    sys.path.insert(0, _DATA_TESTS)
