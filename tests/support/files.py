"""Where things are, and writing a file with its directories."""

from __future__ import annotations

import sqlite3
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The team's shared data sits beside the checkout; CI may clone elsewhere.
SHARED = next(
    (p for p in (REPO.parent / "shared", Path("/work/shared")) if (p / "data").is_dir()),
    REPO.parent / "shared",
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sqlite_copy(src: Path, dst: Path) -> None:
    """A SQLite database as it is now, e.g. a store as a stopped or killed process left it
    (SQLite's backup: consistent with its WAL too)."""
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()
