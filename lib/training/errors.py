"""The training error, in a module of its own so the registry and scripts can catch it cheaply."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot proceed on this data or configuration; the message says why."""
