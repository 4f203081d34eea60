"""Lets every scenario's testinfra tests import the shared helpers (shared/tests here)."""

import sys
from pathlib import Path

_SHARED_TESTS = str(Path(__file__).resolve().parent / "shared" / "tests")
if _SHARED_TESTS not in sys.path:
    sys.path.insert(0, _SHARED_TESTS)
