"""Errors of the replay tool. The CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class ReplayError(Exception):
    """Base class: everything the replay tool raises on bad input or an unavailable dependency."""


class ReplayInputError(ReplayError):
    """A bad argument or input file (range, labels file, model): names the option, file, row or field."""


class TopicError(ReplayError):
    """A topic is missing, or a partition cannot be read (offset out of range, stalled fetch)."""


class CheckpointError(ReplayError):
    """The output folder holds a checkpoint that cannot be resumed with these arguments."""


class PublishError(ReplayError):
    """The broker did not acknowledge the rescored decisions after retries."""
