"""User-facing errors.

Every problem a user can cause (bad config, missing data, corrupt files, incompatible checkpoints)
raises :class:`GanforgeError` with a one-line message that names the problem *and* the fix. The CLI
prints that line and exits with status 2; the Python API lets it propagate.
"""

from __future__ import annotations


class GanforgeError(ValueError):
    """A problem with the user's input. ``str(err)`` is a single line: the problem, then the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        message = problem.rstrip(". ")
        if fix:
            message += f"; {fix.rstrip('.')}"
        super().__init__(" ".join(message.split()))
