"""OpenLineage run events read back against the spec: each JSON event is structured into the
``openlineage-python`` client's ``RunEvent``, and each standard facet into its own generated
class, refusing what the spec does not allow.

The core OpenLineage JSON schema ships in no package reachable here (the facet schemas that
do ship ``$ref`` it by URL), so the check uses what is generated from it: the client's attrs
classes (``openlineage.client.generated``), with their validators (times, run ids), and
cattrs with ``forbid_extra_keys``. On top of what those classes say, it holds an event to
what the schema requires of them: ``producer``, ``schemaURL``, ``_producer`` and
``_schemaURL`` present and URLs, and plain JSON types (no number where text is due).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

import attr
import cattrs
from openlineage.client import event_v2
from openlineage.client import generated as ol_generated
from openlineage.client.generated import base as ol_base
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.nominal_time_run import NominalTimeRunFacet
from openlineage.client.generated.parent_run import ParentRunFacet

__all__ = ["InvalidEvent", "structure_event"]

#: The standard run facets' keys (as their facet schemas name them), with their classes.
STANDARD_RUN_FACETS: dict[str, type] = {
    "nominalTime": NominalTimeRunFacet,
    "parent": ParentRunFacet,
    "errorMessage": ErrorMessageRunFacet,
}


class InvalidEvent(ValueError):
    """An event the OpenLineage spec refuses; the message says where and why."""


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _take_url(data: dict[str, Any], key: str, where: str) -> str:
    """``data[key]``, removed from ``data``, which must be there and be a URL."""
    if key not in data:
        raise InvalidEvent(f"{where}: the required {key!r} is missing")
    value = data.pop(key)
    if not _is_url(value):
        raise InvalidEvent(f"{where}: {key} {value!r} is not a URL")
    return str(value)


def _facet_classes() -> dict[str, type]:
    """Every facet class the client generates, by the schema URL it stamps on its facets."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(ol_generated.__path__):
        module = importlib.import_module(f"{ol_generated.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ol_base.BaseFacet)
                and attr.has(value)
                and value.__module__ == module.__name__
            ):
                found[value._get_schema()] = value
    return found


def _strict(kind: type) -> Callable[[Any, type], Any]:
    # cattrs would turn 3 into "3"; the schema would not.
    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"{value!r} is not a {kind.__name__}")
        return value

    return structure


class _Reader:
    """A cattrs converter that knows the facets: each is read as the class its schema URL
    names (a facet of a schema the client does not know is a custom facet, which the spec
    leaves open but for ``_producer`` and ``_schemaURL``)."""

    def __init__(self) -> None:
        self.classes = _facet_classes()
        self.conv = cattrs.Converter(forbid_extra_keys=True)
        for kind in (str, int, float, bool):
            self.conv.register_structure_hook(kind, _strict(kind))
        for base in (
            ol_base.RunFacet,
            ol_base.JobFacet,
            ol_base.DatasetFacet,
            ol_base.InputDatasetFacet,
            ol_base.OutputDatasetFacet,
        ):
            self.conv.register_structure_hook(dict[str, base] | None, self._facets_hook(base))

    def _facets_hook(self, base: type) -> Callable[[Any, Any], Any]:
        def structure(value: Any, _: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise TypeError(f"facets are an object, not {value!r}")
            return {str(k): self.facet(str(k), v, base) for k, v in value.items()}

        return structure

    def facet(self, key: str, value: Any, base: type) -> Any:
        where = f"facet {key!r}"
        if not isinstance(value, Mapping):
            raise InvalidEvent(f"{where} is not an object")
        data = dict(value)
        if not _is_url(data.get("_producer")):
            raise InvalidEvent(f"{where}: _producer {data.get('_producer')!r} is not a URL")
        schema = _take_url(data, "_schemaURL", where)
        known = self.classes.get(schema)
        standard = STANDARD_RUN_FACETS.get(key) if base is ol_base.RunFacet else None
        if standard is not None and known is not standard:
            raise InvalidEvent(f"{where} is the standard {standard.__name__}, not {schema}")
        if known is None:
            return value  # a custom facet: any further fields are its own
        if not issubclass(known, base):
            raise InvalidEvent(f"{where}: {known.__name__} is no {base.__name__}")
        return self.conv.structure(data, known)


_READER: _Reader | None = None


def structure_event(body: Mapping[str, Any]) -> event_v2.RunEvent:
    """``body``, a run event's JSON, as the client's ``RunEvent``; InvalidEvent (or the
    error cattrs or a generated validator raises) when the spec refuses it."""
    global _READER
    if _READER is None:
        _READER = _Reader()
    data = dict(body)
    if not _is_url(data.get("producer")):
        raise InvalidEvent(f"event: producer {data.get('producer')!r} is not a URL")
    _take_url(data, "schemaURL", "event")
    for key in ("run", "job", "eventTime"):
        if key not in data:
            raise InvalidEvent(f"event: the required {key!r} is missing")
    try:
        event: event_v2.RunEvent = _READER.conv.structure(data, event_v2.RunEvent)
    except cattrs.BaseValidationError as exc:
        raise InvalidEvent("; ".join(cattrs.transform_error(exc))) from exc
    return event
