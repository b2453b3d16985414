"""Generic planners over a task model (see docs/architecture.md, "Planners and the agent")."""

from .base import Plan, TaskModel

__all__ = ["Plan", "TaskModel"]
