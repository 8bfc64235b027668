"""The project's error types: every bad input ends in one of these, with a message a user can act on."""

from __future__ import annotations


class DarkyoloError(Exception):
    """Base class: a user-facing error. The CLI prints its message on one line, no traceback."""


class ConfigError(DarkyoloError):
    """A Darknet ``.cfg`` problem, located by file, line and key where known."""

    def __init__(
        self, message: str, file: str | None = None, line: int | None = None, key: str | None = None
    ) -> None:
        self.file, self.line, self.key, self.reason = file, line, key, message
        where = file or "<cfg>"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": key '{key}'"
        super().__init__(f"{where}: {message}")


class OptionError(DarkyoloError, ValueError):
    """A bad option or argument value, from the command line or the Python API: the message names
    the option and what it must be. A ``ValueError`` too, as Python callers expect."""


class TrainingError(DarkyoloError):
    """Training cannot go on (a non-finite loss, a bad option combination, ...)."""


class WeightsError(DarkyoloError):
    """A ``.weights`` or checkpoint file that does not fit its model or is damaged."""


class DataError(DarkyoloError):
    """A dataset, label or image problem, located by file (and line) where known."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.file, self.line, self.reason = file, line, message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")


def user_message(error: BaseException) -> str:
    """The message to show for ``error``: its text, or, for an error that a ``DataLoader`` worker
    raised and torch re-raised in the main process ("Caught DataError in DataLoader worker process
    1. Original Traceback ..."), the original error's own one-line message."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), text)
        name = type(error).__name__
        for prefix in (f"darkyolo.errors.{name}: ", f"{name}: "):
            if last.startswith(prefix):
                return last[len(prefix) :]
        return last
    return text
