"""The OpenAPI document at /docs.json, true to what the server does.

BentoML's own document describes its health endpoints well, but for the API routes it lists only
400/404/500 with its own error shapes, and drops `null` from nullable fields. Here every API route's
request and response schemas come straight from the pydantic models in `serving.schemas` (strict
types, every limit, nullable fields marked `nullable: true` as OpenAPI 3.0 has it), and every status
the route can answer is listed, all with the one error shape `{"error": "..."}`.
"""
from __future__ import annotations

import copy

from pydantic.json_schema import models_json_schema

from tart.serving import schemas

REF = "#/components/schemas/{model}"

# route -> (response model, statuses beyond those every route can answer)
ROUTES = {
    "/classify": (schemas.ClassifyResponse, {422}),
    "/tasks/create": (schemas.TaskInfo, {409}),
    "/tasks/list": (schemas.TaskList, set()),
    "/tasks/get": (schemas.TaskDetail, {404}),
    "/tasks/delete": (schemas.Deleted, {404}),
    "/tasks/classify": (schemas.ClassifyResponse, {404, 422}),
}
OPTIONAL_BODY = {"/tasks/list", "/stats"}  # an empty body means {}

_EXAMPLES = [{"text": "a cat sleeping on the sofa", "label": "animal"},
             {"text": "a dog barking at the mailman", "label": "animal"},
             {"text": "fresh bread from the oven", "label": "food"},
             {"text": "a bowl of tomato soup", "label": "food"}]
REQUEST_EXAMPLES = {  # valid requests, shown in the document (and sent by fuzzers as they are)
    "/classify": {"examples": _EXAMPLES, "texts": ["a horse in the field", "cheese and crackers"]},
    "/tasks/create": {"name": "animal-or-food", "examples": _EXAMPLES},
    "/tasks/list": {"limit": 10, "offset": 0},
}

STATUS = {
    400: "invalid request: a field is missing, unknown, of the wrong type or outside its limit; or the "
         "body is not valid JSON",
    401: "an API key is required (Authorization: Bearer KEY or X-API-Key) and none valid was sent",
    404: "no task with this task_id",
    408: "the request body did not arrive within body_timeout_s",
    409: "a task with this name exists (the body's task_id is its id), or the task store is full",
    413: "the body is larger than max_body_bytes, or the request's cost is over max_embed_tokens or "
         "max_head_tokens (the message names the limit); for /tasks/create, a task that no request with "
         "default options could use",
    415: "the body is not JSON",
    422: "the classifier refused the examples",
    429: "too many requests in flight (max_concurrency): retry later",
    500: "an unexpected error (a bug): the server log has the details",
    503: "the embedder's queue is full, or the server is shutting down: retry after the Retry-After seconds",
    504: "the request ran longer than timeout_s",
}
COMMON = {400, 401, 408, 413, 415, 429, 500, 503, 504}


def _nullable(node):
    """pydantic's `anyOf: [X, {type: null}]` as OpenAPI 3.0's `X + nullable: true`, everywhere."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        if len(rest) == 1 and "$ref" not in rest[0]:
            node.update(rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    return node


def _error_response(status: int) -> dict:
    return {"description": STATUS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def build(bentoml_spec: dict, requests: dict) -> dict:
    """BentoML's document with the API routes replaced as described above (`requests`: each API route's
    request model, as the service declares it)."""
    spec = copy.deepcopy(bentoml_spec)
    models = [(m, "validation") for m in requests.values()]
    models += [(m, "serialization") for m, _ in ROUTES.values()] + [(schemas.Error, "serialization")]
    _, top = models_json_schema(models, ref_template=REF)
    components = _nullable(top.get("$defs", {}))
    spec.setdefault("components", {})["schemas"] = {
        name: schema for name, schema in spec.get("components", {}).get("schemas", {}).items()
        if name in ("TaskStatusResponse",)} | components
    for route, (response, extra) in ROUTES.items():
        op = spec["paths"][route]["post"]
        request = requests[route].__name__
        media = {"schema": {"$ref": REF.format(model=request)}}
        if route in REQUEST_EXAMPLES:
            media["example"] = REQUEST_EXAMPLES[route]
        op["requestBody"] = {"required": route not in OPTIONAL_BODY, "content": {"application/json": media}}
        op["responses"] = {"200": {"description": "success", "content": {
            "application/json": {"schema": {"$ref": REF.format(model=response.__name__)}}}}}
        for status in sorted(COMMON | extra):
            op["responses"][str(status)] = _error_response(status)
    if "/stats" in spec["paths"]:
        op = spec["paths"]["/stats"]["post"]
        op["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"$ref": REF.format(model="StatsRequest")}}}}
        op["responses"] = {"200": {"description": "counters", "content": {
            "application/json": {"schema": {"type": "object"}}}}}
        for status in sorted(COMMON):
            op["responses"][str(status)] = _error_response(status)
    return spec
