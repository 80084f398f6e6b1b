"""API schemas declared once: GET /feedback's items are the store's decision rows, field for field."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime

from pydantic import TypeAdapter

from api.schemas.feedback import DecisionOut, FeedbackPage
from db.repository import DecisionView


def a_row() -> DecisionView:
    values: dict[str, typing.Any] = {}
    for field in dataclasses.fields(DecisionView):
        kind = typing.get_type_hints(DecisionView)[field.name]
        values[field.name] = (datetime(2026, 11, 2, 9, 30, tzinfo=UTC) if kind is datetime
                              else 7 if kind is int else None if type(None) in typing.get_args(kind)
                              else f"{field.name} value")
    return DecisionView(**values)


def test_decision_out_carries_every_field_of_the_stored_row() -> None:
    row = a_row()
    out = DecisionOut(**row.to_dict())  # as the /feedback route builds it
    assert TypeAdapter(DecisionOut).dump_python(out, mode="json") == {**row.to_dict(), "when": "2026-11-02T09:30:00Z"}


def test_openapi_schema_lists_the_row_fields_with_their_nullability() -> None:
    schema = FeedbackPage.model_json_schema()["$defs"]["DecisionOut"]
    hints = typing.get_type_hints(DecisionView)
    assert list(schema["properties"]) == [f.name for f in dataclasses.fields(DecisionView)]
    defaults = {f.name for f in dataclasses.fields(DecisionView) if f.default is not dataclasses.MISSING}
    assert set(schema["required"]) == set(hints) - defaults  # a field with a default (role) is optional
    nullable = {name for name, spec in schema["properties"].items()
                if {"type": "null"} in spec.get("anyOf", [])}
    assert nullable == {name for name, kind in hints.items() if type(None) in typing.get_args(kind)}
    assert schema["properties"]["when"] == {"format": "date-time", "title": "When", "type": "string"}
    assert schema["description"] == "One stored decision, as GET /feedback lists it."
