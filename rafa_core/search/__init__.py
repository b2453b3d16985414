"""Generic planners over a task model (see DESIGN.md, "Planning")."""

from .base import Plan, TaskModel

__all__ = ["Plan", "TaskModel"]
