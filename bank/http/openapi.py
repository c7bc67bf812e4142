"""What the OpenAPI document says about each operation beyond its types: the problem codes it can
answer (each linked to `/problems/{code}`, with an example body), and realistic examples of its
request and response bodies.

Routes declare only their own problems (`problem_responses(NoCheckup, RecordUnreadable)`); the
ones every route of a shape can answer are added here from the shape, so they cannot be
forgotten: the guards' (each `requires` guard names its problems), a JSON body's (unreadable,
too deep, duplicate key, too large, wrong media type, invalid), a query's, a path parameter's,
and the server's own (500, 503). Examples are registered by type (`example(StepBatch, ...)`)
beside the types in each package, so one example serves every route that takes or returns it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.config.app import AppConfig
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, Schema, Tag
from litestar.params import ParameterKwarg
from litestar.plugins import InitPlugin, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.typing import FieldDefinition

from bank.errors import PROBLEM_TYPES, ProblemType
from bank.http.media import declared_media_type
from bank.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    ProblemResponse,
    problem_body,
    problem_for_status,
    problem_response_spec,
)

# An example request id: the shape of the ones the bank makes (uuid4 hex).
EXAMPLE_REQUEST_ID = "4f1c2b7e9a0d4c3e8b6a5d2f1e0c9b8a"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# Handler parameters that are not request parameters (Litestar's reserved names).
_RESERVED = frozenset({"request", "state", "scope", "headers", "cookies", "query", "body", "data"})


@dataclass(frozen=True)
class BodyExample:
    """One example of a body: `value` as JSON would carry it, or a form as a dict of fields."""

    name: str
    summary: str
    value: Any


_EXAMPLES: dict[type, list[BodyExample]] = {}


def example(type_: type, name: str, summary: str, value: Any) -> None:
    """Register an example of `type_` (a msgspec Struct: pass an instance, so mypy checks it
    against the type; it is encoded as the API would send it)."""
    body = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
    known = _EXAMPLES.setdefault(type_, [])
    if all(existing.name != name for existing in known):
        known.append(BodyExample(name, summary, body))


def examples_of(type_: type) -> list[BodyExample]:
    return list(_EXAMPLES.get(type_, ()))


def problem_example(problem: ProblemType) -> dict[str, Any]:
    """The body a client gets for `problem`, as the catalogue shows it."""
    body = problem_body(problem, detail=problem.description, rid=EXAMPLE_REQUEST_ID)
    built: dict[str, Any] = msgspec.to_builtins(body)
    if problem.code == "validation-failed":
        built["errors"] = [
            {"location": "body", "path": "$.days[0].steps", "detail": "Expected `int` >= 0"}
        ]
    return built


# --- what every route of a shape can answer ----------------------------------------------------

_SERVER = ("internal-error", "service-unavailable")
_QUERY = ("unstorable-character", "bad-request")  # NUL, or a query string that is not UTF-8
_JSON_BODY = (
    "bad-request",
    "unstorable-character",
    "json-too-deep",
    "duplicate-key",
    "payload-too-large",
    "unsupported-media-type",
    "validation-failed",
)
_FORM_BODY = ("payload-too-large", "unsupported-media-type")


def shape_problems(handler: HTTPRouteHandler, path_parameters: Iterable[str]) -> set[ProblemType]:
    """The problems any route shaped like `handler` can answer, whatever it does."""
    oauth = bool(handler.opt.get("oauth_errors"))
    codes: set[str] = set(_SERVER)
    if not oauth:  # the OAuth endpoints answer request errors in RFC 6749's format
        codes.update(_QUERY)
    media_type = declared_media_type(handler)
    if media_type == JSON:
        codes.update(_JSON_BODY)
    elif media_type is not None:
        codes.update(_FORM_BODY)
    path_parameters = set(path_parameters)
    if path_parameters:
        codes.add("not-found")  # a value that matches no resource, or no route
    if not oauth and (
        _query_parameters(handler, path_parameters)
        or any(_constrained(handler, name) for name in path_parameters)
    ):
        codes.add("validation-failed")
    found = {PROBLEM_TYPES[code] for code in codes}
    for guard in handler.resolve_guards():
        found.update(getattr(guard, "problems", ()))
    return found


def _constrained(handler: HTTPRouteHandler, name: str) -> bool:
    """A path parameter with a pattern or length: a value that breaks it is a 422."""
    field = handler.parsed_fn_signature.parameters.get(name)
    kwarg = field.kwarg_definition if field is not None else None
    return isinstance(kwarg, ParameterKwarg) and kwarg.is_constrained


def _query_parameters(handler: HTTPRouteHandler, path_parameters: set[str]) -> list[str]:
    provided = set(handler.resolve_dependencies())
    return [
        name
        for name in handler.parsed_fn_signature.parameters
        if name not in _RESERVED and name not in provided and name not in path_parameters
    ]


# --- the plugin ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Documentation:
    """What the document adds to one operation's own output."""

    problems: Mapping[int, tuple[ProblemType, ...]]
    request_media_type: str | None
    request_schema: Mapping[str, Any] | None
    request_examples: list[BodyExample]
    success_status: int
    response_examples: list[BodyExample]
    extra_content: Mapping[str, str] = field(default_factory=dict)


def _operation_class(documentation: _Documentation) -> type[Operation]:
    class DocumentedOperation(Operation):
        docs: ClassVar[_Documentation] = documentation

        def to_schema(self) -> dict[str, Any]:
            schema = super().to_schema()
            _add_examples(schema, self.docs)
            return schema

    return DocumentedOperation


def _add_examples(schema: dict[str, Any], docs: _Documentation) -> None:
    if docs.request_schema is not None and docs.request_media_type is not None:
        # A handler that reads its body itself (the OAuth forms) states its shape here.
        schema.setdefault(
            "requestBody",
            {
                "required": True,
                "content": {docs.request_media_type: {"schema": docs.request_schema}},
            },
        )
    body = schema.get("requestBody", {}).get("content", {})
    if docs.request_media_type in body and docs.request_examples:
        body[docs.request_media_type]["examples"] = _examples(docs.request_examples)
    responses = schema.get("responses", {})
    success = responses.get(str(docs.success_status))
    if success is not None:
        content = (
            success.setdefault("content", {}) if docs.extra_content else success.get("content")
        )
        if content and docs.response_examples:
            for media in content.values():
                media["examples"] = _examples(docs.response_examples)
        for media_type, description in docs.extra_content.items():
            content[media_type] = {"schema": {"type": "string", "description": description}}
        if content:
            success["content"] = content
    for status, problems in docs.problems.items():
        answer = responses.get(str(status), {}).get("content", {}).get(PROBLEM_MEDIA_TYPE)
        if answer is not None:
            answer["examples"] = {
                p.code: {"summary": p.title, "value": problem_example(p)} for p in problems
            }
    if responses:
        schema["responses"] = dict(sorted(responses.items()))


def _examples(found: list[BodyExample]) -> dict[str, Any]:
    return {e.name: {"summary": e.summary, "value": e.value} for e in found}


def _unwrapped(definition: FieldDefinition) -> FieldDefinition:
    """The body type of `Response[X]` is X."""
    if definition.origin is not None and getattr(definition.origin, "__name__", "") == "Response":
        return definition.inner_types[0] if definition.inner_types else definition
    return definition


def _type_examples(definition: FieldDefinition) -> list[BodyExample]:
    definition = _unwrapped(definition)
    if definition.is_union:  # a tagged union of Structs: each arm's examples
        return [e for arm in definition.inner_types for e in _type_examples(arm)]
    if definition.is_non_string_sequence and definition.inner_types:
        inner = definition.inner_types[0].annotation
        return [BodyExample(e.name, e.summary, [e.value]) for e in examples_of(inner)]
    annotation = definition.annotation
    return examples_of(annotation) if isinstance(annotation, type) else []


def document(handler: HTTPRouteHandler, path_parameters: Iterable[str]) -> None:
    """Complete `handler`'s problems and examples in the document (idempotent: an app built
    twice from the same handlers documents them the same)."""
    path_parameters = list(path_parameters)
    declared: dict[int, set[ProblemType]] = {}
    kept: dict[int, ResponseSpec] = {}
    for status, spec in (handler.responses or {}).items():
        if isinstance(spec, ProblemResponse):
            declared.setdefault(status, set()).update(spec.problems)
        elif isinstance(spec, ResponseSpec) and spec.data_container is Problem:
            declared.setdefault(status, set()).add(problem_for_status(status))
        else:
            kept[status] = spec  # a document of its own (readiness answers its own 503)
    for problem in shape_problems(handler, path_parameters):
        if problem.status not in kept:
            declared.setdefault(problem.status, set()).add(problem)
    responses: dict[int, ResponseSpec] = {
        s: problem_response_spec(s, p) for s, p in declared.items()
    }
    handler.responses = {**responses, **kept}
    data = handler.parsed_fn_signature.parameters.get("data")
    request_examples = _type_examples(data) if data is not None else []
    request_examples += [
        BodyExample(e.name, e.summary, e.value) for e in handler.opt.get("request_examples", ())
    ]
    success = kept.get(handler.status_code)
    returned = (
        FieldDefinition.from_annotation(success.data_container)
        if success is not None and success.data_container is not None
        else handler.parsed_fn_signature.return_type
    )
    response_examples = list(handler.opt.get("response_examples", ())) or _type_examples(returned)
    handler.operation_class = _operation_class(
        _Documentation(
            problems={s: tuple(sorted(p, key=lambda p: p.code)) for s, p in declared.items()},
            request_media_type=declared_media_type(handler),
            request_schema=handler.opt.get("form_schema"),
            request_examples=request_examples,
            success_status=handler.status_code,
            response_examples=response_examples,
            extra_content=dict(handler.opt.get("extra_content", {})),
        )
    )


def _constrain_items(properties: Mapping[str, Any], struct_field: msgspec.inspect.Field) -> None:
    """State a list field's item constraints (`list[Annotated[int, Meta(ge=0)]]`), which
    Litestar leaves out of the items' schema."""
    kind = struct_field.type
    while isinstance(kind, msgspec.inspect.Metadata | msgspec.inspect.UnionType):
        if isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
            continue
        arms = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(arms) != 1:
            return
        kind = arms[0]
    if not isinstance(kind, msgspec.inspect.ListType):
        return
    found = properties.get(struct_field.encode_name)
    arrays = [found, *(getattr(found, "one_of", None) or [])]
    for array in arrays:
        items = getattr(array, "items", None)
        if isinstance(items, Schema):
            _apply(items, kind.item_type)


def _apply(schema: Schema, kind: msgspec.inspect.Type) -> None:
    if isinstance(kind, msgspec.inspect.Metadata):
        for key, value in ((kind.extra_json_schema or {}).get("extra") or {}).items():
            setattr(schema, key, value)
        kind = kind.type
    limits: dict[str, str] = {}
    if isinstance(kind, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        limits = {
            "ge": "minimum",
            "le": "maximum",
            "gt": "exclusive_minimum",
            "lt": "exclusive_maximum",
        }
    elif isinstance(kind, msgspec.inspect.StrType):
        limits = {"min_length": "min_length", "max_length": "max_length", "pattern": "pattern"}
    for source, target in limits.items():
        value = getattr(kind, source)
        if value is not None:
            setattr(schema, target, value)


# What each area of the API is for, shown above its operations in the docs (the tags the
# packages' controllers use; a test checks every operation's tag is described here).
API_TAGS = (
    Tag(
        name="records",
        description="The resident's own records, for the residents' app: deposit daily steps, "
        "read them back and a month's totals; link a transit IC card or an insurer membership "
        "so that the data sources' records reach you; read your taps, rides and checkups "
        "(judged against the standard values). A token of the resident's session, scope "
        "`records:read`, `records:write` or `account`.",
    ),
    Tag(
        name="account",
        description="The resident's account and data portability: change the password, sign "
        "this session out, export everything as a ZIP of JSON and CSV, erase the account (the "
        "data key is destroyed).",
    ),
    Tag(
        name="ingest",
        description="Data sources push records: a transit operator its IC card taps, a clinic "
        "or insurer its checkup results. client_credentials with private_key_jwt; scope "
        "`ingest:transit` or `ingest:checkups`; each item is answered on its own.",
    ),
    Tag(
        name="admin",
        description="Operators' console: the OAuth client registry (register, vet, activate, "
        "suspend). An operator's token (password and TOTP), scope `admin:clients`.",
    ),
    Tag(
        name="oauth",
        description="The authorization server (RFC 6749, 7636, 7523, 7009, 7662, 8414): "
        "metadata, signing keys, tokens, revocation, introspection. Form bodies; errors in RFC "
        "6749's format (`error`, `error_description`) rather than problem+json.",
    ),
    Tag(
        name="operations",
        description="For operators and clients alike: liveness and readiness probes, and the "
        "catalogue of every problem code the API answers (JSON, or a page in a browser).",
    ),
)


class OperationDocs(InitPlugin, ReceiveRoutePlugin, StructSchemaPlugin):
    """Documents every operation of the app as its routes are registered, describes the areas
    (tags) the operations are grouped in, and closes the schema of every Struct that refuses
    unknown fields (`additionalProperties: false`, which Litestar leaves out): a generated
    client must not send a member the server refuses."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType):
            if info.forbid_unknown_fields:
                schema.additional_properties = False
            for struct_field in info.fields:
                _constrain_items(schema.properties or {}, struct_field)
        return schema

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        config = app_config.openapi_config
        if config is not None and config.tags is None:
            config.tags = list(API_TAGS)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            if handler.resolve_include_in_schema():
                document(handler, route.path_parameters)
