"""Legato: data pipelines as plain Python, run durably and fast.

Only the authoring API is imported here; the store, the engine and the CLI load on demand,
so that ``import legato`` in user code stays cheap.
"""

from legato.definitions.assets import Asset
from legato.definitions.context import Context
from legato.definitions.errors import DefinitionError, FailNow, ParamError, Skip
from legato.definitions.pipeline import Pipeline, pipeline, unmapped
from legato.definitions.resource_param import resource
from legato.definitions.retry import Condition, RetryPolicy, when
from legato.definitions.secret_param import Secret
from legato.definitions.task import Task, task
from legato.observability.alert_rules import AlertRule, alert

__version__ = "0.1.0"

__all__ = [
    "AlertRule",
    "Asset",
    "Condition",
    "Context",
    "DefinitionError",
    "FailNow",
    "ParamError",
    "Pipeline",
    "RetryPolicy",
    "Secret",
    "Skip",
    "Task",
    "__version__",
    "alert",
    "pipeline",
    "resource",
    "task",
    "unmapped",
    "when",
]
