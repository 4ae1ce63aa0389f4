"""The library's error types.

Every error a user can cause subclasses :class:`VipmlError` and the builtin error it resembles,
so ``except ValueError`` clauses written before vipml still catch them. The CLI prints the
message of a :class:`VipmlError` without a traceback and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches


class VipmlError(Exception):
    """Base class of every error vipml raises on purpose."""


class DataError(VipmlError, ValueError):
    """Input data that cannot be used: a missing table or column, unusable values."""


class ConfigError(VipmlError, ValueError):
    """A configuration file or value that cannot be used."""


class NotFittedError(VipmlError, ValueError, AttributeError):
    """An estimator used before ``fit``."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """Return the valid choice closest to ``word``, or None when nothing is close."""
    found = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def sample_list(values: Iterable[object], limit: int = 5) -> str:
    """Render up to ``limit`` values as a comma-separated list, with a count of the rest."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    rest = len(values) - limit
    return shown + (f" (and {rest} more)" if rest > 0 else "")
