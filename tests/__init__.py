"""The Python tests (a package, so that ``tests.conftest`` is one module for all)."""
