"""Shared, read-only dataset fixtures (tests that modify files write their own copies)."""

import pytest
from formats import write_cifar10dvs, write_gesture


@pytest.fixture(scope="session")
def cifar10dvs_tree(tmp_path_factory):
    """``(root, events)``: every class holds files 0, 2, 10, 100 and 101."""
    root = tmp_path_factory.mktemp("cifar10dvs")
    return root, write_cifar10dvs(root)


@pytest.fixture(scope="session")
def gesture_tree(tmp_path_factory):
    """``(root, info)`` of :func:`formats.write_gesture`."""
    root = tmp_path_factory.mktemp("gesture")
    return root, write_gesture(root)
