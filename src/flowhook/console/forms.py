"""The endpoint form: HTML form fields in, the admin API's models out, problems back
next to the field they belong to.

Nothing here decides what is valid: values are handed to ``EndpointCreate`` /
``EndpointUpdate`` and ``EndpointService``, exactly like a JSON body of the admin API.
This module only turns text boxes into JSON values and errors into per-field messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from flowhook.endpoints.models import EndpointView
from flowhook.errors import FlowhookError

TEXT = (
    "name",
    "flow",
    "type",
    "webhookUrl",
    "webhookUser",
    "authMethod",
    "locale",
    "inputTransformer",
    "outputTransformer",
    "handoverUrl",
)
NUMBERS = (
    "sessionTimeoutSeconds",
    "rateLimitPerSecond",
    "rateLimitBurst",
    "transcriptRetentionDays",
)
CHECKBOXES = (
    "active",
    "maskSensitiveLogging",
    "storeTranscripts",
    "collectAnalytics",
    "maskIpAddresses",
)
JSON_DOCS = ("nluConnector", "translation")
FORM_FIELDS = (*TEXT, *NUMBERS, *CHECKBOXES, *JSON_DOCS, "webhookPassword")


@dataclass
class EndpointForm:
    """What the form shows: the values as typed and a message per field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # an error that belongs to no field

    def fail(self, exc: FlowhookError | ValidationError) -> EndpointForm:
        if isinstance(exc, ValidationError):
            for err in exc.errors():
                loc = [str(p) for p in err.get("loc", ())]
                name = loc[0] if loc else ""
                where = ".".join(loc[1:])
                message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
                text = f"{where}: {message}" if where else message
                if name in FORM_FIELDS:
                    self.errors.setdefault(name, text)
                else:
                    self.problem = f"{'.'.join(loc) or 'form'}: {message}"
            return self
        name = str(exc.details.get("field") or "")
        if name in FORM_FIELDS:
            self.errors[name] = exc.message
        else:
            self.problem = exc.message
        return self


def blank_form(flows: list[str]) -> EndpointForm:
    return EndpointForm(
        values={
            "type": "webhook",
            "authMethod": "none",
            "flow": flows[0] if flows else "",
            "active": True,
            "storeTranscripts": True,
            "collectAnalytics": True,
            "transcriptRetentionDays": 30,
        }
    )


def form_of_view(view: EndpointView) -> EndpointForm:
    doc = view.model_dump(mode="json", by_alias=True)
    values = {name: doc.get(name) for name in FORM_FIELDS if name != "webhookPassword"}
    for name in NUMBERS:  # 30.0 reads better as 30
        number = values[name]
        if isinstance(number, float) and number.is_integer():
            values[name] = int(number)
    for name in JSON_DOCS:
        values[name] = "" if doc.get(name) is None else _json_text(doc[name])
    return EndpointForm(values=values)


def read_endpoint_form(
    form: dict[str, str], *, editing: bool
) -> tuple[dict[str, Any], EndpointForm]:
    """The JSON document the form stands for, and the form as typed (to show again).

    Empty boxes mean "not set" (null). Checkboxes are present or absent. A JSON box
    that does not parse is a problem of that field, before anything else is checked.
    """
    shown = EndpointForm()
    doc: dict[str, Any] = {}
    for name in TEXT:
        value = form.get(name, "").strip()
        shown.values[name] = value
        doc[name] = value or None
    for name in NUMBERS:
        value = form.get(name, "").strip()
        shown.values[name] = value
        doc[name] = _number(value)
    for name in CHECKBOXES:
        doc[name] = shown.values[name] = name in form
    for name in JSON_DOCS:
        value = form.get(name, "").strip()
        shown.values[name] = value
        if not value:
            doc[name] = None
            continue
        try:
            doc[name] = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            shown.errors[name] = f"not valid JSON: {exc}"
    password = form.get("webhookPassword", "")
    if password:
        doc["webhookPassword"] = password
    elif not editing:
        doc["webhookPassword"] = None
    if editing and "clearWebhookPassword" in form:
        doc["webhookPassword"] = None
    if not editing:
        doc["signing"] = "signing" in form
        shown.values["signing"] = doc["signing"]
        # Creating: an empty box means the default, as when the JSON body leaves it out.
        doc = {k: v for k, v in doc.items() if v is not None}
    return doc, shown


def changes_from(doc: dict[str, Any], current: EndpointView, model: type[BaseModel]) -> BaseModel:
    """An update carrying only the fields that differ from ``current`` (PATCH semantics);
    a blank webhook URL or type is left alone, as the API cannot clear them either."""
    now = current.model_dump(mode="json", by_alias=True)
    changed = {}
    for name, value in doc.items():
        if name == "webhookPassword":
            if value is not None or current.has_webhook_password:
                changed[name] = value
            continue
        required = name in ("webhookUrl", "type", "name", "flow", "authMethod")
        if value is None and required and now.get(name) is None:
            continue
        if value != now.get(name):
            changed[name] = value
    return model.model_validate(changed)


def _number(text: str) -> Any:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text  # the model names the field and what it expects
    return number if math.isfinite(number) else text


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
