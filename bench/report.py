"""Writes docs/performance.md from one bench run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write(path: Path, bench: Any, results: list[Any], batch_size: int) -> None:
    from bench import run  # noqa: PLC0415 - run imports this module

    path.write_text(run.table(results, batch_size) + "\n", encoding="utf-8")
