"""Property tests of the wire promise, over every operation of the CodePipeline model.

Whatever arrives at ``POST /`` — input shaped by the model (in and out of its constraints,
some of it valid enough to reach the handlers), members of the wrong JSON type, unknown
members, bodies that are not JSON, not an object, empty, huge, deeply nested or not UTF-8,
and bad or missing ``X-Amz-Target`` values — the server never answers 500, always answers
with ``x-amzn-RequestId``, and every answer other than 200 is a JSON body
``{"__type": code, "message": text}`` with the same code in ``x-amzn-ErrorType``, with HTTP
409 for ``ConflictException`` and 400 for every other code. Requests are raw HTTP over one
keep-alive connection to one server, so that bodies boto3 would refuse can be sent; the inputs
are generated from botocore's service model.

Every property runs against a SQLite-backed server. Inputs for the operations that have a
handler, and so reach the store, also go to a PostgreSQL-backed one, with fewer examples:
PostgreSQL refuses some values SQLite keeps (NUL characters, strings longer than a column),
while odd bodies and targets are answered by the protocol layer before any database is touched.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.model import Shape
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conveyor.api.handlers import handlers
from conveyor.api.model import TARGET_PREFIX, operation, operation_names
from conveyor.config import Settings
from conveyor.server import running
from tests.conftest import BACKENDS, fresh_schema
from tests.support.declarations import ROLE, pipeline

JSON_TYPE = "application/x-amz-json-1.1"
PREFIX = "arn:aws:codepipeline:us-east-1:000000000000"
PIPELINE_ARN = f"{PREFIX}:app"
TYPE_ARN = f"{PREFIX}:actiontype:Custom/Build/Fuzz/1"
MAX_LIST = 3
BIG_LIST = 60
HUGE = 100_000

# Operations that remove what the others look up run last.
OPERATIONS = sorted(operation_names(), key=lambda name: (name.startswith("Delete"), name))
# Those that have a handler; the others are answered before any database is touched.
SERVED = [name for name in OPERATIONS if name in handlers()]

# Values that satisfy many of the model's string shapes and name what the server holds.
KNOWN_STRINGS = (
    "app",
    "fuzz",
    "Source",
    "Build",
    "Deploy",
    "AWS",
    "Custom",
    "ThirdParty",
    "Fuzz",
    "Git",
    "CodeBuild",
    "Manual",
    "S3",
    "1",
    "2",
    "main",
    "SourceOutput",
    "conveyor-artifacts",
    "ProjectName",
    "RepositoryUrl",
    "BranchName",
    "team",
    "us-east-1",
    "****",
    ROLE,
    PIPELINE_ARN,
    TYPE_ARN,
    f"{PREFIX}:webhook:hook",
    f"{PREFIX}:actiontype:ThirdParty/Build/Fuzz/1",
    "00000000-0000-0000-0000-000000000000",
)
ODD_STRINGS = ("", " ", "\x00", "é", "😀", "aws:reserved", "a\nb", "%s{0}")
# Valid JSON (as \\ud800 escapes), but not valid Unicode: only in the malformed inputs.
SURROGATES = ("\ud800", "\udfff", "a\udc00b")

CUSTOM_TYPE: dict[str, Any] = {
    "category": "Build",
    "provider": "Fuzz",
    "version": "1",
    "settings": {"entityUrlTemplate": "https://example.com/{Config:P}"},
    "configurationProperties": [
        {"name": "P", "required": True, "key": True, "secret": False, "queryable": True},
        {"name": "S", "required": False, "key": False, "secret": True},
    ],
    "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
    "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
}
DECLARED_TYPE: dict[str, Any] = {
    "executor": {"configuration": {"jobWorkerExecutorConfiguration": {}}, "type": "JobWorker"},
    "id": {"category": "Build", "owner": "ThirdParty", "provider": "Fuzz", "version": "1"},
    "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
    "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
    "properties": [{"name": "P", "optional": False, "key": True, "noEcho": False}],
}
TYPE_ID = {"category": "Build", "owner": "Custom", "provider": "Fuzz", "version": "1"}
TAGS = [{"key": "team", "value": "web"}]
WEBHOOK: dict[str, Any] = {
    "name": "hook",
    "targetPipeline": "app",
    "targetAction": "Source",
    "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
    "authentication": "GITHUB_HMAC",
    "authenticationConfiguration": {"SecretToken": "secret"},
}

# Inputs that pass validation, for the operations Conveyor implements; perturbed versions of
# them reach the handlers far more often than inputs built from the model alone.
SEEDS: dict[str, list[dict[str, Any]]] = {
    "CreatePipeline": [{"pipeline": pipeline("fuzz"), "tags": TAGS}],
    "UpdatePipeline": [{"pipeline": pipeline()}],
    "GetPipeline": [{"name": "app"}, {"name": "app", "version": 1}],
    "DeletePipeline": [{"name": "fuzz"}],
    "ListPipelines": [{"maxResults": 1}],
    "CreateCustomActionType": [{**CUSTOM_TYPE, "tags": TAGS}],
    "GetActionType": [TYPE_ID],
    "DeleteCustomActionType": [{k: TYPE_ID[k] for k in ("category", "provider", "version")}],
    "ListActionTypes": [{"actionOwnerFilter": "Custom"}, {"regionFilter": "us-east-1"}],
    "UpdateActionType": [{"actionType": DECLARED_TYPE}],
    "TagResource": [{"resourceArn": PIPELINE_ARN, "tags": TAGS}],
    "UntagResource": [{"resourceArn": TYPE_ARN, "tagKeys": ["team"]}],
    "ListTagsForResource": [{"resourceArn": PIPELINE_ARN, "maxResults": 1}],
    "PutWebhook": [{"webhook": WEBHOOK, "tags": TAGS}],
    "ListWebhooks": [{"MaxResults": 1}],
    "RegisterWebhookWithThirdParty": [{"webhookName": "hook"}],
    "DeregisterWebhookWithThirdParty": [{"webhookName": "hook"}],
    "DeleteWebhook": [{"name": "fuzz"}],
    "PutActionRevision": [
        {
            "pipelineName": "app",
            "stageName": "Source",
            "actionName": "Source",
            "actionRevision": {"revisionId": "a" * 40, "revisionChangeId": "a", "created": 1},
        }
    ],
}
SETUP: list[tuple[str, dict[str, Any]]] = [
    ("CreatePipeline", {"pipeline": pipeline()}),
    ("CreateCustomActionType", CUSTOM_TYPE),
    ("TagResource", {"resourceArn": TYPE_ARN, "tags": TAGS}),
    ("PutWebhook", {"webhook": WEBHOOK}),
]


# --- the wire -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


# What a keep-alive connection the server has closed raises when it is used again.
DROPPED = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class Wire:
    """Raw HTTP to the server over one keep-alive connection, opened again when dropped."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=60)

    def post(self, body: bytes, *targets: str | bytes) -> Answer:
        """The answer to one request. The server closes a connection that sat idle for a few
        seconds (as happens on a loaded machine between two examples); a request that met
        the closed connection never reached it, and is sent once more on a new one. After
        any other failure the connection is closed, so the next request starts clean."""
        try:
            return self._exchange(body, targets)
        except DROPPED:
            self.connection.close()
        except BaseException:
            self.connection.close()
            raise
        try:
            return self._exchange(body, targets)
        except BaseException:
            self.connection.close()
            raise

    def _exchange(self, body: bytes, targets: tuple[str | bytes, ...]) -> Answer:
        conn = self.connection
        conn.putrequest("POST", "/", skip_accept_encoding=True)
        conn.putheader("Content-Type", JSON_TYPE)
        for target in targets:
            conn.putheader("X-Amz-Target", target)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, data)

    def call(self, name: str, params: Any) -> Answer:
        return self.post(json.dumps(params).encode(), f"{TARGET_PREFIX}.{name}")


@contextmanager
def _served(settings: Settings) -> Iterator[Wire]:
    with running(settings) as live:
        host, port = live.endpoint.removeprefix("http://").split(":")
        client = Wire(host, int(port))
        for name, params in SETUP:
            answer = client.call(name, params)
            assert answer.status == 200, answer.body
        try:
            yield client
        finally:
            client.connection.close()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    with _served(Settings(home=tmp_path_factory.mktemp("fuzz"))) as client:
        yield client


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    home = tmp_path_factory.mktemp("fuzz-postgres")
    with fresh_schema() as url, _served(Settings(home=home, database_url=url)) as client:
        yield client


def check(answer: Answer) -> str:
    """The answer keeps the promise; its error code, or "200"."""
    assert answer.status != 500, answer.body[:2000]
    assert answer.headers.get("x-amzn-requestid"), answer.headers
    if answer.status == 200:
        assert isinstance(json.loads(answer.body), dict)
        return "200"
    body = json.loads(answer.body)
    assert isinstance(body, dict), body
    assert set(body) == {"__type", "message"}, body
    code, message = body["__type"], body["message"]
    assert isinstance(code, str) and code, body
    assert isinstance(message, str), body
    assert answer.headers.get("x-amzn-errortype") == code, (answer.headers, body)
    assert answer.status == (409 if code == "ConflictException" else 400), (answer.status, body)
    return code


# --- strategies from the model --------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(ODD_STRINGS)
)
GARBAGE = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ODD_INTEGERS = (
    0,
    -1,
    2**31,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    1.0,
    5.0,
    100.0,
    1e20,
    -0.0,
)
CHARACTERS = st.characters() | st.sampled_from(("\x00", "\n", "\t"))


_REPEATED = re.compile(r"\^?(?P<one>\[[^\]]+\]|\.)(?P<op>[+*])\$?")


def _limits(shape: Shape) -> tuple[int, int | None]:
    if shape.name == "ActionConfigurationValue":
        return shape.metadata.get("min", 0), 50_000
    return shape.metadata.get("min", 0), shape.metadata.get("max")


def _fits(shape: Shape, text: str) -> bool:
    low, high = _limits(shape)
    pattern = shape.metadata.get("pattern")
    enum = getattr(shape, "enum", None)
    return (
        low <= len(text) <= (high if high is not None else len(text))
        and (pattern is None or re.fullmatch(pattern, text, re.DOTALL) is not None)
        and (not enum or text in enum)
    )


def _string(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    enum = getattr(shape, "enum", None)
    if enum:
        valid: st.SearchStrategy[Any] = st.sampled_from(enum)
    else:
        low, high = _limits(shape)
        pattern = shape.metadata.get("pattern")
        known = [s for s in KNOWN_STRINGS if _fits(shape, s)]
        top = min(high if high is not None else low + 30, low + 30)
        repeated = _REPEATED.fullmatch(pattern or ".*")
        if repeated:
            # One character class repeated: draw the length within the limits directly.
            one = repeated["one"]
            alphabet = CHARACTERS if one == "." else st.from_regex(one, fullmatch=True)
            made = st.text(alphabet, min_size=max(low, repeated["op"] == "+"), max_size=top)
        else:
            made = st.from_regex(pattern, fullmatch=True)
        valid = made.filter(lambda s: _fits(shape, s))
        if known:
            valid = st.sampled_from(known) | valid
    if strict:
        return valid
    low, high = _limits(shape)
    beyond = [low - 1] if low > 0 else []
    if high is not None:
        beyond.append(high + 1)
    return (
        valid
        | st.text(CHARACTERS, max_size=30)
        | st.sampled_from(ODD_STRINGS)
        | st.sampled_from([n * "a" for n in beyond] or ["a"])
    )


def _integer(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    valid = st.integers(low, high)
    # JSON has no integers apart from numbers: 5.0 is as good as 5 to the validator.
    integral = [
        v
        for v in ODD_INTEGERS
        if (low is None or v >= low) and (high is None or v <= high) and isinstance(v, float)
    ]
    if integral:
        valid = valid | st.sampled_from(integral)
    if strict:
        return valid
    edges = [v for v in (low, high) if v is not None]
    return (
        valid
        | st.integers()
        | st.sampled_from(ODD_INTEGERS)
        | st.sampled_from([v + d for v in edges for d in (-1, 1)] or [0])
    )


def _timestamp(strict: bool) -> st.SearchStrategy[Any]:
    valid = (
        st.integers(-(2**40), 2**40)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from(["2024-01-01T00:00:00Z", "1700000000", "2024-02-30", "0"])
    )
    return valid if strict else valid | st.text(max_size=20)


def _list(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    low, high = _limits(shape)
    top = min(high if high is not None else low + MAX_LIST, low + MAX_LIST)
    items = shaped(shape.member, strict)
    valid = st.lists(items, min_size=low, max_size=top)
    if strict:
        return valid
    beyond = []
    if low > 0:
        beyond.append(st.lists(items, max_size=low - 1))
    if high is not None and high < BIG_LIST:
        beyond.append(st.lists(shaped(shape.member, True), min_size=high + 1, max_size=high + 1))
    return st.one_of(valid, *beyond)


def _map(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    low, high = _limits(shape)
    top = min(high if high is not None else low + MAX_LIST, low + MAX_LIST)
    keys = shaped(shape.key, strict)
    values = shaped(shape.value, strict)
    valid = st.dictionaries(keys, values, min_size=low, max_size=top)
    if strict or high is None:
        return valid
    return valid | st.dictionaries(keys, values, min_size=high + 1, max_size=high + 1)


def _structure(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    required = set(shape.required_members)
    return st.fixed_dictionaries(
        {n: shaped(m, strict) for n, m in shape.members.items() if n in required},
        optional={n: shaped(m, strict) for n, m in shape.members.items() if n not in required},
    )


_STRATEGIES: dict[tuple[str, bool], st.SearchStrategy[Any]] = {}


def shaped(shape: Shape, strict: bool) -> st.SearchStrategy[Any]:
    """Values of ``shape``: within every constraint when ``strict``, else sometimes not."""
    key = (shape.name, strict)
    if key not in _STRATEGIES:
        kind = shape.type_name
        if kind == "structure":
            made = _structure(shape, strict)
        elif kind == "list":
            made = _list(shape, strict)
        elif kind == "map":
            made = _map(shape, strict)
        elif kind == "string":
            made = _string(shape, strict)
        elif kind in ("integer", "long"):
            made = _integer(shape, strict)
        elif kind == "boolean":
            made = st.booleans() if strict else st.booleans() | st.sampled_from(["true", 0, 1])
        elif kind == "timestamp":
            made = _timestamp(strict)
        else:  # blob, double, float: none in this model's inputs today
            made = JSON_SCALARS
        _STRATEGIES[key] = made
    return _STRATEGIES[key]


def _spots(value: Any, shape: Shape, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, Shape]]:
    """Every place in ``value`` with the shape the model gives it."""
    yield path, shape
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                yield from _spots(item, shape.members[name], (*path, name))
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _spots(item, shape.member, (*path, index))
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from _spots(item, shape.value, (*path, key))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    changed = copy.copy(value)
    changed[path[0]] = _replaced(value[path[0]], path[1:], new)
    return changed


def _wrong(shape: Shape) -> st.SearchStrategy[Any]:
    """Values of the wrong JSON type for ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        wrong: st.SearchStrategy[Any] = st.lists(GARBAGE, max_size=3) | st.text(max_size=5)
    elif kind == "list":
        wrong = st.dictionaries(st.text(max_size=5), GARBAGE, max_size=3) | st.text(max_size=5)
    elif kind == "map":
        wrong = st.lists(GARBAGE, max_size=3) | st.integers() | st.text(max_size=5)
    elif kind == "string":
        wrong = st.integers() | st.floats() | st.booleans() | st.lists(st.text(max_size=3))
    elif kind in ("integer", "long"):
        wrong = st.sampled_from(["5", "one", True, 1.5, float("inf"), float("nan"), [1], {}])
    elif kind == "boolean":
        wrong = st.sampled_from(["true", "false", 0, 1, [], {}])
    else:
        wrong = st.sampled_from(["yesterday", True, [], {}, float("nan"), "inf"])
    return wrong | st.none() | GARBAGE


@st.composite
def perturbed(draw: st.DrawFn, base: Any, shape: Shape) -> Any:
    """``base`` with up to three of its parts replaced by other values of the same shape."""
    value = base
    for _ in range(draw(st.integers(0, 3))):
        path, spot = draw(st.sampled_from(list(_spots(value, shape))))
        value = _replaced(value, path, draw(shaped(spot, draw(st.booleans()))))
    return value


@st.composite
def corrupted(draw: st.DrawFn, base: Any, shape: Shape) -> Any:
    """``base`` broken in one to three ways: wrong types, nulls, unknown or missing members."""
    value = base
    for _ in range(draw(st.integers(1, 3))):
        # The input itself is replaced only when it has no parts: odd_bodies covers that.
        spots = list(_spots(value, shape))[1:] or [((), shape)]
        path, spot = draw(st.sampled_from(spots))
        target = _at(value, path)
        how = draw(st.sampled_from(["wrong", "wrong", "unknown", "drop", "huge", "unicode"]))
        if how == "unknown" and isinstance(target, dict):
            extra = "x-" + draw(st.text(max_size=12))  # no member of the model has a "-"
            value = _replaced(value, path, {**target, extra: draw(GARBAGE)})
        elif how == "drop" and isinstance(target, dict) and target:
            gone = draw(st.sampled_from(sorted(target)))
            value = _replaced(value, path, {k: v for k, v in target.items() if k != gone})
        elif how == "huge":
            value = _replaced(value, path, draw(st.sampled_from(["a" * HUGE, ["a" * HUGE]])))
        elif how == "unicode":
            value = _replaced(value, path, draw(st.sampled_from(SURROGATES)))
        else:
            value = _replaced(value, path, draw(_wrong(spot)))
    return value


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _bases(name: str, strict: bool = True) -> st.SearchStrategy[Any]:
    shape = operation(name).input_shape
    made = shaped(shape, strict)
    seeds = SEEDS.get(name)
    if seeds:
        return made | st.sampled_from(seeds).flatmap(lambda seed: perturbed(seed, shape))
    return made


def model_shaped(name: str) -> st.SearchStrategy[Any]:
    return _bases(name) | _bases(name, strict=False)


def malformed(name: str) -> st.SearchStrategy[Any]:
    shape = operation(name).input_shape
    return _bases(name).flatmap(lambda base: corrupted(base, shape))


def _nested(depth: int, *, lists: bool, closed: bool) -> str:
    opener, leaf, closer = ("[", "1", "]") if lists else ('{"a":', '""', "}")
    return opener * depth + leaf + (closer * depth if closed else "")


DEPTHS = st.sampled_from([2, 64, 250, 400, 600, 1000, 3000, 100_000])
DEEP = st.builds(_nested, DEPTHS, lists=st.booleans(), closed=st.booleans())
PLACEHOLDER = "\x00deep\x00"


@st.composite
def _deep_member(draw: st.DrawFn, name: str) -> str:
    """A seed of the operation with an unknown member, nested deep, in one of its structures."""
    shape = operation(name).input_shape
    seed = draw(st.sampled_from(SEEDS.get(name, [{}])))
    spots = [path for path, spot in _spots(seed, shape) if spot.type_name == "structure"]
    path = draw(st.sampled_from(spots))
    value = _replaced(seed, path, {**_at(seed, path), "x-deep": PLACEHOLDER})
    deep = _nested(draw(DEPTHS), lists=draw(st.booleans()), closed=True)
    return json.dumps(value).replace(json.dumps(PLACEHOLDER), deep)


def odd_bodies(name: str) -> st.SearchStrategy[bytes]:
    """Bodies that are not a JSON object of the operation's input, or are one at an extreme."""
    members = sorted(operation(name).input_shape.members) or ["x"]
    member = st.sampled_from(members)
    texts: st.SearchStrategy[str] = st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", " ", "\n\t", "null", "true", "1", "-0", "1e999", "NaN", "[]", '""']),
        st.sampled_from(["{", "}", '{"a"}', "{'a': 1}", '{"a":1,}', "[1,2", '{"a":1}{"b":2}']),
        JSON_SCALARS.map(json.dumps),
        st.lists(GARBAGE, max_size=3).map(json.dumps),
        DEEP,
        st.builds(lambda m, d: '{"' + m + '":' + d + "}", member, DEEP),
        _deep_member(name),
        member.map(lambda m: json.dumps({m: "a" * HUGE})),
        member.map(lambda m: json.dumps({m: ["a" * HUGE]})),
        st.just('"' + "a" * HUGE + '"'),
        st.just("[" + ",".join(["1"] * (HUGE // 2)) + "]"),
        member.map(lambda m: '{"' + m + '": ' + "1" * 5000 + "}"),
        member.map(lambda m: '{"' + m + '": "\\ud800", "' + m + '": "\\u0000"}'),
        member.map(lambda m: '{"' + m + '": NaN, "x": -Infinity}'),
    )
    raw = st.one_of(
        st.binary(max_size=64),
        member.map(lambda m: b'{"' + m.encode() + b'": "\xff\xfe"}'),
        member.map(lambda m: b'{"' + m.encode() + b'": "\xc0\xaf\xed\xa0\x80"}'),
        st.sampled_from([b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\x00", b"{\x00}"]),
        member.map(lambda m: json.dumps({m: "x"}).encode("utf-16")),
        member.map(lambda m: json.dumps({m: "x"}).encode("utf-32-be")),
    )
    return texts.map(lambda t: t.encode("utf-8", "surrogatepass")) | raw


def _targets() -> st.SearchStrategy[list[str | bytes]]:
    names = st.sampled_from(OPERATIONS)
    one: st.SearchStrategy[str | bytes] = st.one_of(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
        st.text(st.characters(min_codepoint=0xA0, exclude_categories=("Cs",)), max_size=20).map(
            str.encode
        ),
        names,
        names.map(lambda n: f"{TARGET_PREFIX}.{n.lower()}"),
        names.map(lambda n: f"{TARGET_PREFIX}{n}"),
        names.map(lambda n: f"CodePipeline_20150710.{n}"),
        names.map(lambda n: f"{TARGET_PREFIX}.{n}.{n}"),
        names.map(lambda n: f"{TARGET_PREFIX}..{n}"),
        names.map(lambda n: f"{TARGET_PREFIX}.{n}x"),
        names.map(lambda n: f" {TARGET_PREFIX}.{n}\t"),
        st.sampled_from(["", TARGET_PREFIX, f"{TARGET_PREFIX}.", ".", "a" * 10_000]),
    )
    return st.lists(one, max_size=2)


# --- the tests ------------------------------------------------------------------------------

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        # The `wire` fixtures run once per test, not per example, on purpose.
        HealthCheck.function_scoped_fixture,
    ],
)
# PostgreSQL's share: enough to reach each operation's queries, little enough to stay cheap.
ON_POSTGRES = settings(EXAMPLES, max_examples=8)


def _restored(client: Wire) -> Wire:
    """What the seeds and known strings name exists again, whatever earlier tests deleted.

    Fixtures run once per test, not per example, on purpose."""
    for name, params in SETUP:
        check(client.call(name, params))
    return client


@pytest.fixture
def wire(sqlite_server: Wire) -> Wire:
    return _restored(sqlite_server)


@pytest.fixture
def pg_wire(postgres_server: Wire) -> Wire:
    return _restored(postgres_server)


@pytest.fixture(params=BACKENDS)
def any_wire(request: pytest.FixtureRequest) -> Wire:
    client: Wire = request.getfixturevalue("wire" if request.param == "sqlite" else "pg_wire")
    return client


def test_every_operation_is_routed(wire: Wire) -> None:
    assert len(OPERATIONS) == 44
    for name in OPERATIONS:
        answer = wire.post(b"{}", f"{TARGET_PREFIX}.{name}")
        assert check(answer) != "UnknownOperationException", name
    for target in (f"{TARGET_PREFIX}.MakePipelineFaster", f"{TARGET_PREFIX}.getPipeline"):
        assert check(wire.post(b"{}", target)) == "UnknownOperationException", target


def _model_shaped_input(client: Wire, name: str, data: st.DataObject) -> None:
    params = data.draw(model_shaped(name), label="params")
    event(check(client.call(name, params)))


def _malformed_input(client: Wire, name: str, data: st.DataObject) -> None:
    params = data.draw(malformed(name), label="params")
    code = check(client.call(name, params))
    event(code)
    assert code != "UnknownOperationException"


@pytest.mark.parametrize("name", OPERATIONS)
@EXAMPLES
@given(data=st.data())
def test_model_shaped_inputs_never_fail_the_server(
    wire: Wire, name: str, data: st.DataObject
) -> None:
    _model_shaped_input(wire, name, data)


@pytest.mark.parametrize("name", OPERATIONS)
@EXAMPLES
@given(data=st.data())
def test_malformed_inputs_never_fail_the_server(wire: Wire, name: str, data: st.DataObject) -> None:
    _malformed_input(wire, name, data)


@pytest.mark.postgres
@pytest.mark.parametrize("name", SERVED)
@ON_POSTGRES
@given(data=st.data())
def test_inputs_never_fail_the_server_on_postgres(
    pg_wire: Wire, name: str, data: st.DataObject
) -> None:
    if data.draw(st.booleans(), label="malformed"):
        _malformed_input(pg_wire, name, data)
    else:
        _model_shaped_input(pg_wire, name, data)


@settings(EXAMPLES, max_examples=200)
@given(data=st.data())
def test_odd_bodies_never_fail_the_server(wire: Wire, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(OPERATIONS), label="operation")
    body = data.draw(odd_bodies(name), label="body")
    event(check(wire.post(body, f"{TARGET_PREFIX}.{name}")))


@settings(EXAMPLES, max_examples=100)
@given(targets=_targets(), body=st.sampled_from([b"{}", b"", b"[", json.dumps(SEEDS).encode()]))
def test_bad_targets_are_unknown_operations(
    wire: Wire, targets: list[str | bytes], body: bytes
) -> None:
    answer = wire.post(body, *targets)
    first = targets[0] if targets else ""
    text = first.decode("latin-1") if isinstance(first, bytes) else first
    prefix, _, name = text.strip(" \t").partition(".")
    if prefix != TARGET_PREFIX or name not in operation_names():
        assert check(answer) == "UnknownOperationException"
    else:
        check(answer)


def test_wire_sends_again_when_the_server_closed_the_connection(wire: Wire) -> None:
    """The server closes a keep-alive connection left idle; the next request must not fail
    (once it did, and every later test failed with it)."""
    check(wire.call("GetPipeline", {"name": "app"}))
    sock = wire.connection.sock
    assert sock is not None
    # Readable with nothing to read: the server has closed its end.
    readable, _, _ = select.select([sock], [], [], 60)
    assert readable and sock.recv(1, socket.MSG_PEEK) == b""
    assert check(wire.call("GetPipeline", {"name": "app"})) == "200"


def _deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


# Minimal reproductions of what the properties above found; each answered 500 when found.
FOUND = [
    pytest.param(
        "ListPipelines",
        b'{"maxResults": 1.0}',
        "200",
        id="integral-float-maxResults-ListPipelines",
    ),
    pytest.param(
        "ListTagsForResource",
        json.dumps({"resourceArn": PIPELINE_ARN, "maxResults": 1.0}).encode(),
        "200",
        id="integral-float-maxResults-ListTagsForResource",
    ),
    pytest.param(
        "GetPipeline",
        b'{"name": "app", "version": 9223372036854775808}',
        "ValidationException",
        id="version-beyond-int64",
    ),
    pytest.param(
        "TagResource",
        json.dumps(
            {"resourceArn": PIPELINE_ARN, "tags": [{"key": "k", "value": "\ud800"}]}
        ).encode(),
        None,
        id="lone-surrogate-in-tag-value",
    ),
    pytest.param(
        "UntagResource",
        json.dumps({"resourceArn": PIPELINE_ARN, "tagKeys": ["\ud800"]}).encode(),
        None,
        id="lone-surrogate-in-tag-key",
    ),
    pytest.param(
        "GetPipeline",
        ('{"name": ' + "[" * 326 + '"\\u00e9"' + "]" * 326 + "}").encode(),
        "ValidationException",
        id="wrong-type-member-nested-326-deep-around-an-escaped-string",
    ),
    pytest.param(
        "TagResource",
        json.dumps(
            {"resourceArn": PIPELINE_ARN, "tags": [{"key": "k", "value": "a\x00b"}]}
        ).encode(),
        "ValidationException",
        id="nul-in-tag-value",
    ),
    pytest.param(
        "UntagResource",
        json.dumps({"resourceArn": PIPELINE_ARN, "tagKeys": ["\x00"]}).encode(),
        "ValidationException",
        id="nul-in-tag-key",
    ),
    pytest.param(
        "GetPipeline",
        _deep_list(1000).encode(),
        "SerializationException",
        id="body-nested-1000-deep",
    ),
    pytest.param(
        "GetPipeline",
        ('{"name": ' + _deep_list(300) + "}").encode(),
        "ValidationException",
        id="wrong-type-member-nested-300-deep",
    ),
    pytest.param(
        "CreatePipeline",
        json.dumps({"pipeline": {**pipeline("deep"), "x-deep": PLACEHOLDER}})
        .replace(json.dumps(PLACEHOLDER), _deep_list(600))
        .encode(),
        None,
        id="unknown-member-nested-600-deep",
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), FOUND)
def test_found_inputs_keep_the_promise(
    any_wire: Wire, name: str, body: bytes, expected: str | None
) -> None:
    answer = any_wire.post(body, f"{TARGET_PREFIX}.{name}")
    code = check(answer)
    if expected is not None:
        assert code == expected, answer.body
