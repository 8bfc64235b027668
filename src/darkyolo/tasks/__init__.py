"""The kinds of training: each a :class:`~darkyolo.tasks.base.Task` registered here by name."""

from __future__ import annotations

from darkyolo.darknet.cfg import NetworkConfig
from darkyolo.tasks.base import Task


def task_named(name: str) -> Task:
    """A new task of kind ``name`` (``detect`` or ``classify``)."""
    if name == "detect":
        from darkyolo.tasks.detection import DetectionTask

        return DetectionTask()
    if name == "classify":
        from darkyolo.tasks.classification import ClassificationTask

        return ClassificationTask()
    raise ValueError(f"unknown task {name!r}, expected one of {', '.join(TASKS)}")


def task_for(config: NetworkConfig) -> Task:
    """The task that trains ``config``: detection for a cfg with heads, else classification."""
    return task_named("detect" if config.heads else "classify")


#: the task names, in the order commands list them
TASKS = ("detect", "classify")

__all__ = ["TASKS", "Task", "task_for", "task_named"]
