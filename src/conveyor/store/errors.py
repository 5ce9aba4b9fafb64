"""What the store reports when the database refuses a write; the one seam for driver errors."""

from __future__ import annotations


class StoreError(Exception):
    pass


class DuplicateKey(StoreError):
    """A unique or foreign key refused the write (a concurrent writer won the race)."""


class StoreUnavailable(StoreError):
    """The database cannot be opened or reached."""
