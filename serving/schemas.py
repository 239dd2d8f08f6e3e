"""Request and response models of the HTTP API (pydantic), with every size limit in the schema.

Limits come from the server settings (`tart.serving.settings`), so they also appear in the OpenAPI document
at /docs.json. A request that breaks one gets HTTP 400 from the request gate (`serving/gate.py`,
before BentoML sees it) with pydantic's message after the field's path, e.g.
`{"error": "texts: List should have at most 128 items after validation, not 200"}`.
Unknown fields are rejected too, so a typo in an option name is an error, not silently ignored.
"""
from __future__ import annotations

from typing import Annotated, Literal

from bentoml import IODescriptor
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tart.data.readers import is_blank
from tart.serving.settings import get_settings

S = get_settings()


def _clean_text(value: str) -> str:
    # whitespace-only texts are refused by the pattern \S below, the rule the document states; this also
    # refuses texts of only zero-width / control characters (ZWSP, BOM, soft hyphen, ZWJ), which the
    # tokenizer drops: they would be classified from no tokens at all (the corpus reader's rule, is_blank)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogate code points)") from None
    if is_blank(value):
        raise ValueError("must contain a visible character, not only spaces, control or zero-width characters")
    return value


# pattern \S (searched, as JSON Schema does): at least one non-whitespace character, stated in the document
_VISIBLE = r"\S"
Text = Annotated[str, StringConstraints(min_length=1, max_length=S.max_text_chars, pattern=_VISIBLE),
                 AfterValidator(_clean_text)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=S.max_label_chars, pattern=_VISIBLE),
                  AfterValidator(_clean_text)]
TaskName = Annotated[str, StringConstraints(min_length=1, max_length=S.max_name_chars, pattern=_VISIBLE),
                     AfterValidator(_clean_text)]
TaskId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Texts = Annotated[list[Text], Field(min_length=1, max_length=S.max_texts,
                                    description=f"texts to classify (1 to {S.max_texts})")]


STRICT = ConfigDict(extra="forbid", strict=True)  # no coercion, no unknown field


class _Strict(BaseModel):
    model_config = STRICT


class Example(_Strict):
    text: Text
    label: Label


Examples = Annotated[list[Example], Field(min_length=2, max_length=S.max_examples,
                                          description=f"labelled examples (2 to {S.max_examples}), "
                                                      f"with 2 to {S.max_labels} distinct labels")]


def check_labels(examples: list[Example]) -> list[Example]:
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise ValueError(f"need at least 2 distinct labels, got {len(labels)}: {labels}")
    if len(labels) > S.max_labels:
        raise ValueError(f"at most {S.max_labels} distinct labels are allowed, got {len(labels)}")
    return examples


class Options(_Strict):
    n_permutations: int | None = Field(
        None, ge=1, le=S.max_permutations,
        description=f"support-set orderings averaged per prediction (default {S.n_permutations})")
    multiclass: Literal["auto", "ovr", "ovo"] = Field(
        "auto", description="'auto': a multi-class head reads up to its number of label slots at once, "
                            "else one-vs-rest; 'ovr': one-vs-rest binary problems; 'ovo': one-vs-one")
    projection: Literal["support", "support+queries"] = Field(
        "support", description="what the projection to the head's input size is fitted on")
    label_names: bool = Field(
        True, description="read each label's name (the label, '_' and '-' as spaces), embedded like a text, "
                          "as what the label means")
    transductive: bool = Field(
        False, description="also read this request's texts as unlabelled texts of the task (a text's answer "
                           "then depends on the others in its request)")


# ---- requests (the fields are the API method's parameters) ----

VALIDATED = "tart.request"  # the ASGI scope key under which the request gate leaves the validated body


class _Request(IODescriptor):
    """A route's body, validated once: by the request gate (serving/gate.py), which leaves the
    model in the request's scope; BentoML takes it from there instead of parsing the body again."""
    model_config = STRICT

    @classmethod
    async def from_http_request(cls, request, serde):
        validated = request.scope.get(VALIDATED)
        if isinstance(validated, cls):
            return validated
        return await super().from_http_request(request, serde)  # no gate in front (e.g. a test app)


class ClassifyRequest(_Request):
    examples: Examples
    texts: Texts
    unlabeled: list[Text] = Field(
        default_factory=list, max_length=S.max_texts,
        description="texts of the task without labels, which a head with side inputs reads (how the texts to "
                    "classify are spread); a seeded sample of at most 64 is read")
    options: Options = Field(default_factory=Options)

    _labels = field_validator("examples")(check_labels)


class TaskCreateRequest(_Request):
    name: TaskName = Field(description="unique task name")
    examples: Examples
    unlabeled: list[Text] = Field(
        default_factory=list, max_length=S.max_texts,
        description="texts of the task without labels, kept with it (a seeded sample of at most 64 is embedded "
                    "and kept), which a head with side inputs reads with every request")

    _labels = field_validator("examples")(check_labels)


class TaskRef(_Request):
    task_id: TaskId


class TaskClassifyRequest(_Request):
    task_id: TaskId
    texts: Texts
    options: Options = Field(default_factory=Options)


class StatsRequest(_Request):
    """No fields: the body is `{}` or empty."""


class TaskListRequest(_Request):
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10**9)


# ---- responses ----

class _Response(BaseModel):
    # fields with a default are always sent, so the document lists them as required
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Prediction(_Response):
    label: str
    scores: dict[str, float] = Field(description="probability of each label; they sum to 1")
    tokens: int = Field(description="the text's length in the embedder's tokens")
    truncated: bool = Field(description="the text was longer than the embedder reads (max_length tokens) "
                                        "and only its beginning was used")


class ModelInfo(_Response):
    head: str
    embedder: str


class ClassifyResponse(_Response):
    predictions: list[Prediction]
    model: ModelInfo
    task_id: str | None = Field(None, description="the registered task used (null for /classify)")
    truncated_examples: list[int] = Field(
        default_factory=list, description="positions of the examples longer than the embedder reads (cut)")


class Error(BaseModel):
    """Every error response, whatever its status."""
    error: str = Field(description="what is wrong; a field's name first when one field is at fault")
    # only in the 409 for a taken task name, hence not required (and not in `_Response`, which would be)
    task_id: str | None = Field(None, description="409 for a taken name only: the id of the task that has it")


class TaskInfo(_Response):
    id: str
    name: str
    labels: list[str]
    n_examples: int
    embedder: str
    created_at: str
    truncated_examples: list[int] = Field(
        default_factory=list, description="positions of the examples longer than the embedder reads (cut)")


class TaskDetail(TaskInfo):
    examples: list[Example]


class TaskList(_Response):
    tasks: list[TaskInfo]
    total: int


class Deleted(_Response):
    id: str
    deleted: bool
