"""Generic planners over a task model (see docs/architecture.md, "Planners and the agent").

Every planner has ``async plan(model, state) -> Plan``; a model's optional capabilities are
the protocols below, which planners check with ``isinstance``."""

from .base import JointEvaluator, Plan, Prefetcher, PriorModel, TaskModel

__all__ = ["JointEvaluator", "Plan", "Prefetcher", "PriorModel", "TaskModel"]
