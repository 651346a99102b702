import os
from pathlib import Path

import pytest

# The golden vectors live in the shared folder beside the checkout (SPEC §2.6).
GOLDEN = Path(
    os.environ.get("ARLIF_GOLDEN", Path(__file__).resolve().parents[2] / "shared" / "golden" / "neurons.npz")
)


@pytest.fixture(scope="session")
def golden_path() -> Path:
    if not GOLDEN.exists():
        pytest.fail(f"golden vectors not found at {GOLDEN}; set ARLIF_GOLDEN to the path of neurons.npz")
    return GOLDEN
