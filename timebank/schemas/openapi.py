"""What every route's OpenAPI says: the answer base class, problem answers, documented
extras (CSV, PDF, text answers, required headers) and the strict-structs schema plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from timebank.core.problems import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """Base of the response shapes: a field the API sends but does not document fails the contract tests."""


class Problem(msgspec.Struct):
    """RFC 9457 problem details; extra members (e.g. account_id, errors) may follow."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


def documented(
    *,
    answers: dict[str, Schema] | None = None,
    body: dict[str, Schema] | None = None,
    body_description: str | None = None,
    required_headers: tuple[str, ...] = (),
) -> type[Operation]:
    """An ``operation_class`` for what Litestar cannot say itself: a success answer that may also
    come in other media types (CSV, PDF, a signed note), a body that is not JSON (a CSV file),
    a header the route requires but checks itself (for its own problem type)."""

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            if answers and self.responses:
                success = next(code for code in self.responses if code.startswith("2"))
                response = self.responses[success]
                response.content = {
                    **(response.content or {}),  # type: ignore[union-attr]
                    **{media: OpenAPIMediaType(schema=s) for media, s in answers.items()},
                }
            if body:
                self.request_body = RequestBody(
                    content={media: OpenAPIMediaType(schema=s) for media, s in body.items()},
                    description=body_description,
                    required=True,
                )
            for parameter in self.parameters or ():
                if getattr(parameter, "param_in", None) == "header" and parameter.name in required_headers:
                    parameter.required = True  # type: ignore[union-attr]

    return _Operation


# The routes that move value answer 400 idempotency-key-required without the header.
IDEMPOTENT = documented(required_headers=("Idempotency-Key",))


TEXT = Schema(type=OpenAPIType.STRING)  # a text answer or body
BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


class StrictStructs(StructSchemaPlugin):
    """Litestar's schema for msgspec structs, plus ``additionalProperties: false`` for a struct with
    ``forbid_unknown_fields`` (every request body here, every response shape): what such a
    struct refuses, or would never send, the schema says is not there. Register it first in
    ``Litestar(plugins=[...])``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


PROBLEM_DESCRIPTIONS = {
    400: "The request is not valid: a parameter or the body breaks the schema or a rule (or the edge refused "
    "it: an unknown Host, a control character, an integer beyond 64 bits, a date out of range, deep JSON)",
    401: "No valid API key (`Authorization: Bearer tbk_...`)",
    403: "The key's role may not do this",
    404: "No such resource (also what another community's objects look like)",
    409: "The request conflicts with the current state (or an Idempotency-Key was used for another request)",
    413: "The request body is larger than this route accepts",
    422: "The request breaks a rule of the bank",
    429: "Too many failed authentications from this address; retry later",
    503: "The database is unavailable; retry later",
}
# What any route may answer: the edge refuses malformed requests (400) and every route
# reads the database (503). Routes that need a key may also answer 401, 403 and 429.
ALWAYS = (400, 503)
WITH_A_KEY = (401, 403, 429)


class HealthChecks(Out):
    database: str  # "ok", or the kind of error that kept the service from its database
    audit: dict[str, Any] | None = None  # the last nightly audit: status, period, finished_at, failed_checks


class Health(Out):
    status: Literal["ok", "unavailable"]
    checks: HealthChecks | None = None


READY_RESPONSES = {
    503: ResponseSpec(
        Health,
        description="The service cannot reach its database (take it out of rotation)",
        generate_examples=False,
    ),
}


def problems(*statuses: int, public: bool = False) -> dict[int, ResponseSpec]:
    """The problem+json answers of a route, for its ``responses=``: the statuses it names
    (404 for a route that finds an object, 409, 413 for a route with a body, 422 ...), plus
    those every route can give, plus 401/403/429 unless the route is ``public``."""
    wanted = set(statuses) | set(ALWAYS) | (set() if public else set(WITH_A_KEY))
    return {
        s: ResponseSpec(
            Problem,
            description=PROBLEM_DESCRIPTIONS.get(s, "application/problem+json"),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for s in sorted(wanted)
    }
