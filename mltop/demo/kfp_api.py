"""A fake Kubeflow Pipelines API server (v2beta1, plus the v1beta1 bits old servers still answer).

Used by the tests and the demo. It answers what `kfp.Client` / `kfp_server_api` and a real
ml-pipeline API server exchange, including the awkward parts an adapter must survive:

* timestamps are whole seconds, and `finished_at` of an unfinished run is `1970-01-01T00:00:00Z`;
* the healthz body is the hand-written handler's, not the swagger's;
* paging is keyset paging behind a base64 JSON token that also records sort and filter; a request
  that repeats sort_by/filter next to a page token must repeat them *identically*, and, as on every
  real server up to at least 2.17, a repeated filter with a list (`IN`) or numeric value never
  matches its own token (Go compares the JSON-decoded token with `reflect.DeepEqual`), so
  clients should send the page token alone;
* the `filter` query value is URL-decoded twice (`url.QueryUnescape` on the gateway's value);
* the default order is created_at ascending (ties by id), not id;
* error bodies are google.rpc.Status, with an extra `error` key up to 2.5.x (grpc-gateway v1);
  `message` is the server's wrapped error chain, the detail's `message` the short one;
* terminating a run moves it to CANCELING without a state_history entry (an upstream TODO); the
  Argo workflow then ends and the run turns CANCELED. Terminating a finished (or already
  canceling) run is 400, retrying a run that is not FAILED/CANCELED is 409 (Aborted).

Sources: kubeflow/pipelines at tags 2.5.0 and 2.14.0 (`server/list_request_util.go`,
`list/list.go`, `filter/filter.go`, `server/api_converter.go`, `storage/run_store.go`,
`resource/resource_manager.go`, `common/util/error.go`, `apiserver/main.go`), and the generated
`kfp_server_api` models. Authentication (bearer token, cookie, header) models what a front proxy
or the multi-user API server enforces; healthz stays public, as it is in the real deployment.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

COMMIT_SHA = "4ad5eb0f3f7c1e2d9b8a6c5d4e3f2a1b0c9d8e7f"  # what a real build reports; any 40 hex digits
SERVICE_ACCOUNT = "pipeline-runner"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
STATES = ("RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "SKIPPED", "FAILED", "CANCELING",
          "CANCELED", "PAUSED")
TERMINAL = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
# run_store.TerminateRun only updates rows in these states; anything else is "Row not found".
TERMINATABLE = frozenset({"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "PAUSED"})
# Retry needs an Argo workflow in phase Failed/Error; a terminated workflow ends Failed too.
RETRYABLE = frozenset({"FAILED", "CANCELED"})
STORAGE_STATES = ("AVAILABLE", "ARCHIVED")
# model.RuntimeState.ToV1: what v1beta1 `status` (the `Conditions` column) says for each state.
V1_STATUS = {"RUNTIME_STATE_UNSPECIFIED": "Unknown", "PENDING": "Pending", "PAUSED": "Pending", "RUNNING": "Running",
             "SUCCEEDED": "Succeeded", "SKIPPED": "Skipped", "FAILED": "Failed", "CANCELED": "Failed",
             "CANCELING": "Terminating"}
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
# grpc-gateway's code -> HTTP status table (runtime.HTTPStatusFromCode).
HTTP_STATUS = {0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
               12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
OPERATIONS = {"EQUALS": 1, "NOT_EQUALS": 2, "GREATER_THAN": 3, "GREATER_THAN_EQUALS": 5, "LESS_THAN": 6,
              "LESS_THAN_EQUALS": 7, "IN": 8, "IS_SUBSTRING": 9}
# The keys a filter.Filter serializes its predicate maps under (filterForMarshaling), per operation.
_FILTER_MAPS = {"EQUALS": "EQ", "NOT_EQUALS": "NEQ", "GREATER_THAN": "GT", "GREATER_THAN_EQUALS": "GTE",
                "LESS_THAN": "LT", "LESS_THAN_EQUALS": "LTE", "IN": "IN", "IS_SUBSTRING": "SUBSTRING"}
_SCALAR_VALUES = {"int_value": "int32", "long_value": "int64", "string_value": "string", "timestamp_value": "int64"}
_LIST_VALUES = {"int_values": "[]int32", "long_values": "[]int64", "string_values": "[]string"}
_CAMEL = {"intValue": "int_value", "longValue": "long_value", "stringValue": "string_value",
          "timestampValue": "timestamp_value", "intValues": "int_values", "longValues": "long_values",
          "stringValues": "string_values"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_version(text: str) -> tuple[int, ...]:
    """`2.14.0`, `v2.5.0`, `2.0.0-beta.2` -> a comparable tuple; unparseable ("unknown", dev builds) -> newest."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if not match:
        return (9999,)
    return tuple(int(part) for part in match.group(1).split("."))


def rfc3339(moment: datetime | None) -> str:
    """Whole seconds, 'Z': the server keeps times as int seconds, and the zero time is the epoch."""
    return (moment or EPOCH).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(moment: datetime | None) -> int:
    return int((moment or EPOCH).timestamp())


def _parse_rfc3339(text: str) -> datetime:
    # protojson's Timestamp: RFC3339 with 'Z' or an offset, up to nanoseconds (Python keeps micro).
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", text)
    if not match:
        raise ValueError(f"invalid google.protobuf.Timestamp value {json.dumps(text)}")
    frac = (match.group(2) or "")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + frac + zone)


def go_query_unescape(text: str) -> str:
    """Go's url.QueryUnescape: '+' is a space, %XX a byte, a malformed escape an error."""
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        ch = raw[i]
        if ch == ord("%"):
            pair = raw[i + 1:i + 3]
            if len(pair) < 2 or not all(c in b"0123456789abcdefABCDEF" for c in pair):
                raise ValueError(f'invalid URL escape "{raw[i:i + 3].decode(errors="replace")}"')
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(ord(" ") if ch == ord("+") else ch)
        i += 1
    return out.decode(errors="replace")


# -- errors ---------------------------------------------------------------------------------------


class KfpError(Exception):
    """A util.UserError: `message` is the wrapped internal chain the status carries, `external` the
    short message its google.rpc.Status detail carries."""

    def __init__(self, code: int, message: str, external: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.external = message if external is None else external

    def wrap(self, context: str) -> KfpError:
        return KfpError(self.code, f"{context}: {self.message}", self.external)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def invalid_input(message: str) -> KfpError:
    return KfpError(3, f"Invalid input error: {message}", message)


def invalid_input_with_details(cause: str, message: str) -> KfpError:
    return KfpError(3, f"InvalidInputError: {message}: {cause}", message)


def not_found(kind: str, name: str) -> KfpError:
    return KfpError(5, f"ResourceNotFoundError: {kind} {name} not found", f"{kind} {name} not found")


def error_body(err: KfpError, version: tuple[int, ...]) -> dict[str, Any]:
    detail = {"@type": "type.googleapis.com/google.rpc.Status", "code": err.code, "message": err.external}
    if version < (2, 6):  # grpc-gateway v1 (KFP <= 2.5.x) adds `error`, a copy of `message`
        return {"error": err.message, "code": err.code, "message": err.message, "details": [detail]}
    return {"code": err.code, "message": err.message, "details": [detail]}


# -- listing: fields, filters, page tokens ------------------------------------------------------


@dataclass(frozen=True)
class _Listable:
    """One listable model, as list.Listable describes it to the server."""

    kind: str  # the Go type name error messages use
    model_name: str  # the table prefix filter keys get ("" for runs)
    fields: Mapping[str, str]  # API name (v2 and v1 aliases) -> model column
    value: Callable[[dict[str, Any], str], Any]  # (stored record, column) -> its value
    key_field: str = "UUID"
    default_sort: str = "CreatedAtInSec"

    def column(self, api_name: str) -> str | None:
        model = self.fields.get(api_name)
        if model is None:
            return None
        return f"{self.model_name}.{model}" if self.model_name else model

    def columns(self) -> set[str]:
        return {self.column(name) or "" for name in self.fields}

    def lookup(self, record: dict[str, Any], column: str) -> Any:
        return self.value(record, column.split(".")[-1])


def _run_value(run: dict[str, Any], column: str) -> Any:
    return {
        "UUID": lambda: run["run_id"],
        "DisplayName": lambda: run["display_name"],
        "CreatedAtInSec": lambda: _seconds(run["created_at"]),
        "FinishedAtInSec": lambda: _seconds(run["finished_at"]),
        "ScheduledAtInSec": lambda: _seconds(run["scheduled_at"]),
        "Description": lambda: run["description"],
        "StorageState": lambda: run["storage_state"],
        "Conditions": lambda: V1_STATUS[run["state"]],
        "Namespace": lambda: run["namespace"],
        "ExperimentUUID": lambda: run["experiment_id"],
        "State": lambda: run["state"],
        "JobUUID": lambda: run["recurring_run_id"] or "",
    }[column]()


def _experiment_value(exp: dict[str, Any], column: str) -> Any:
    return {
        "UUID": lambda: exp["experiment_id"],
        "Name": lambda: exp["display_name"],
        "CreatedAtInSec": lambda: _seconds(exp["created_at"]),
        "LastRunCreatedAtInSec": lambda: _seconds(exp["last_run_created_at"]),
        "Description": lambda: exp["description"],
        "Namespace": lambda: exp["namespace"],
        "StorageState": lambda: exp["storage_state"],
    }[column]()


# model.Run / model.Experiment APIToModelFieldMap (state_history and runtime_details left out: not comparable).
RUN_LISTABLE = _Listable("Run", "", {
    "run_id": "UUID", "id": "UUID", "display_name": "DisplayName", "name": "DisplayName",
    "created_at": "CreatedAtInSec", "finished_at": "FinishedAtInSec", "scheduled_at": "ScheduledAtInSec",
    "description": "Description", "storage_state": "StorageState", "status": "Conditions", "namespace": "Namespace",
    "experiment_id": "ExperimentUUID", "state": "State", "recurring_run_id": "JobUUID",
}, _run_value)
EXPERIMENT_LISTABLE = _Listable("Experiment", "experiments", {
    "experiment_id": "UUID", "id": "UUID", "display_name": "Name", "name": "Name", "created_at": "CreatedAtInSec",
    "last_run_created_at": "LastRunCreatedAtInSec", "description": "Description", "namespace": "Namespace",
    "storage_state": "StorageState",
}, _experiment_value)

FilterMaps = dict[str, dict[str, list[Any]]]


def _parse_filter(encoded: str, listable: _Listable, op_field: str) -> FilterMaps | None:
    """The `filter` query value -> filter.Filter's maps (op -> column -> values), or None for no filter."""
    if encoded == "":
        return None

    def bad(reason: str) -> KfpError:
        return invalid_input(f"failed to parse valid filter from {json.dumps(encoded)}: {reason}")

    try:
        decoded = go_query_unescape(encoded)  # the second decoding: the gateway already did one
    except ValueError as exc:
        raise bad(str(exc)) from None
    try:
        proto = json.loads(decoded)
    except ValueError as exc:
        raise bad(f"proto: syntax error: {exc}") from None
    if not isinstance(proto, dict):
        raise bad("proto: syntax error: unexpected token, want object")
    for name in proto:
        if name != "predicates":
            raise bad(f'proto: unknown field "{name}"')
    raw = proto.get("predicates") or []
    if not isinstance(raw, list):
        raise bad("proto: syntax error: unexpected token, want array")
    predicates = [_parse_predicate(p, op_field, bad) for p in raw]
    if not predicates:
        return None  # filter.NewFromPredicate: no predicates is no filter
    maps: FilterMaps = {name: {} for name in _FILTER_MAPS.values()}
    for operation, key, value in predicates:
        column = listable.column(key)
        if column is None:
            raise invalid_input(f"no support for filtering on unrecognized field {json.dumps(key)}")
        maps[_FILTER_MAPS[operation]].setdefault(column, []).append(value)
    return maps


def _parse_predicate(raw: Any, op_field: str, bad: Callable[[str], KfpError]) -> tuple[str, str, Any]:
    if not isinstance(raw, dict):
        raise bad("proto: syntax error: unexpected token, want object")
    operation: Any = 0
    key = ""
    value: Any = None
    go_type = "<nil>"
    for name, item in raw.items():
        field = _CAMEL.get(name, name)
        if field == op_field:
            if isinstance(item, str) and item in OPERATIONS:
                operation = item
            elif item == "OPERATION_UNSPECIFIED":
                operation = 0
            elif isinstance(item, int) and not isinstance(item, bool):
                operation = next((op for op, number in OPERATIONS.items() if number == item), item)
            else:
                raise bad(f"proto: invalid value for enum field {op_field}: {json.dumps(item)}")
        elif field == "key":
            if not isinstance(item, str):
                raise bad(f"proto: invalid value for string field key: {json.dumps(item)}")
            key = item
        elif field in _SCALAR_VALUES or field in _LIST_VALUES:
            if value is not None:
                raise bad(f'proto: error parsing "{name}", oneof kfp.Predicate.value is already set')
            value, go_type = _parse_value(field, item, bad)
        else:
            raise bad(f'proto: unknown field "{name}"')
    if not isinstance(operation, str):
        # toOperation: OPERATION_UNSPECIFIED (or a number with no name) is not an operation.
        message = f"Error using Filter.Predicate.Operation with {operation}"
        raise KfpError(3, f"UnknownApiVersionError: {message}", message)
    if value is None:
        raise KfpError(3, "UnknownApiVersionError: Error using Filter.Predicate.Value with <nil>",
                       "Error using Filter.Predicate.Value with <nil>")
    if key == "":
        raise invalid_input(f"Predicate key cannot be empty for operation {operation} and value {value}")
    # filter.checkPredicate
    is_list = go_type.startswith("[]")
    if operation == "IN" and not is_list:
        raise invalid_input(f"cannot use IN operator with scalar type {go_type}")
    if operation == "IS_SUBSTRING" and go_type != "string":
        raise invalid_input(f"cannot use non string value type {go_type} with operator {operation}")
    if operation not in ("IN", "IS_SUBSTRING") and is_list:
        raise invalid_input(f"cannot use scalar operator {operation} on array type {go_type}")
    return operation, key, value


def _parse_value(field: str, item: Any, bad: Callable[[str], KfpError]) -> tuple[Any, str]:
    def integer(x: Any) -> int:
        # protojson takes an int32/int64 as a JSON number or a decimal string.
        if isinstance(x, bool) or not isinstance(x, (int, str, float)):
            raise bad(f"proto: invalid value for integer field {field}: {json.dumps(x)}")
        try:
            number = int(x) if not isinstance(x, float) or x.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            raise bad(f"proto: invalid value for integer field {field}: {json.dumps(x)}")
        return number

    if field == "string_value":
        if not isinstance(item, str):
            raise bad(f"proto: invalid value for string field string_value: {json.dumps(item)}")
        return item, "string"
    if field in ("int_value", "long_value"):
        return integer(item), _SCALAR_VALUES[field]
    if field == "timestamp_value":
        try:
            return _seconds(_parse_rfc3339(item if isinstance(item, str) else "")), "int64"  # toValue: .Unix()
        except ValueError:
            raise bad(f"proto: invalid google.protobuf.Timestamp value {json.dumps(item)}") from None
    if not isinstance(item, dict) or any(k != "values" for k in item):
        raise bad(f"proto: invalid value for message field {field}: {json.dumps(item)}")
    values = item.get("values") or []
    if not isinstance(values, list):
        raise bad(f"proto: invalid value for repeated field values: {json.dumps(values)}")
    if field == "string_values":
        if not all(isinstance(v, str) for v in values):
            raise bad("proto: invalid value for string field values")
        return list(values), "[]string"
    return [integer(v) for v in values], _LIST_VALUES[field]


def _like(pattern: str) -> re.Pattern[str]:
    # IS_SUBSTRING is SQL `LIKE '%v%'`: % and _ stay wildcards, and MySQL's default collation ignores case.
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _compare(actual: Any, wanted: Any) -> int | None:
    """-1/0/1 as SQL would order the column value against the filter value; None when incomparable."""
    if isinstance(actual, (int, float)) and not isinstance(wanted, (int, float)):
        try:
            wanted = float(wanted)
        except (TypeError, ValueError):
            return None
    if isinstance(actual, str) and not isinstance(wanted, str):
        return None
    try:
        return (actual > wanted) - (actual < wanted)
    except TypeError:
        return None


def _filter_matches(maps: FilterMaps | None, listable: _Listable, record: dict[str, Any]) -> bool:
    if not maps:
        return True
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, w: _compare(a, w) == 0,
        "NEQ": lambda a, w: _compare(a, w) not in (0, None),
        "GT": lambda a, w: _compare(a, w) == 1,
        "GTE": lambda a, w: _compare(a, w) in (0, 1),
        "LT": lambda a, w: _compare(a, w) == -1,
        "LTE": lambda a, w: _compare(a, w) in (0, -1),
        "IN": lambda a, w: isinstance(w, list) and any(_compare(a, x) == 0 for x in w),
        "SUBSTRING": lambda a, w: isinstance(a, str) and _like(str(w)).search(a) is not None,
    }
    for op, test in tests.items():
        for column, values in (maps.get(op) or {}).items():
            actual = listable.lookup(record, column)
            if not all(test(actual, wanted) for wanted in values):
                return False
    return True


def _all_strings(maps: FilterMaps | None) -> bool:
    return maps is None or all(isinstance(v, str) for per_op in maps.values() for vs in per_op.values() for v in vs)


def _encode_token(token: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def _decode_token(text: str, listable: _Listable) -> dict[str, Any]:
    try:
        token = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise invalid_input_with_details(str(exc), "Invalid package token") from None
    if not isinstance(token, dict):
        raise invalid_input_with_details("json: cannot unmarshal into Go value of type list.token",
                                         "Invalid package token")
    columns = listable.columns()
    maps = token.get("Filter")
    valid = (token.get("SortByFieldName") in set(listable.fields.values())
             and isinstance(token.get("IsDesc", False), bool)
             and (maps is None or (isinstance(maps, dict) and all(
                 isinstance(per_op, dict) and all(k in columns and isinstance(v, list) for k, v in per_op.items())
                 for per_op in maps.values() if per_op is not None))))
    if not valid:
        raise invalid_input_with_details("unsupported sort or filter field in token", "Invalid package token")
    return token


@dataclass
class _ListOptions:
    page_size: int
    token: dict[str, Any]  # list.token: sort column, cursor (next row's values), direction, filter


def _page_size(query: Mapping[str, str]) -> int:
    text = query.get("page_size", "") or "0"
    try:
        size = int(text)
    except ValueError:
        raise KfpError(3, f'type mismatch, parameter: page_size, error: strconv.ParseInt: parsing "{text}": '
                          "invalid syntax") from None
    if size < 0:
        raise invalid_input(f"The page size should be greater than 0. Got {size}")
    return DEFAULT_PAGE_SIZE if size == 0 else min(size, MAX_PAGE_SIZE)


def _list_options(listable: _Listable, query: Mapping[str, str], op_field: str = "operation") -> _ListOptions:
    """server.validatedListOptions: a fresh query, or a page token checked against what came with it."""
    page_token = query.get("page_token", "")
    sort_by = query.get("sort_by", "")
    filter_spec = query.get("filter", "")

    def fresh() -> _ListOptions:
        maps = _parse_filter(filter_spec, listable, op_field)
        size = _page_size(query)
        words = sort_by.lower().split()
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise invalid_input(f"Received invalid sort by format {json.dumps(sort_by)}. Supported format: "
                                '"field_name", "field_name desc", or "field_name asc"')
        column = listable.default_sort
        if words:
            found = listable.fields.get(words[0])
            if found is None:
                raise invalid_input(f"Invalid sorting field: {json.dumps(words[0])} on listable type {listable.kind}")
            column = found
        token = {"SortByFieldName": column, "SortByFieldValue": None, "SortByFieldPrefix": listable.model_name,
                 "KeyFieldName": listable.key_field, "KeyFieldValue": None, "KeyFieldPrefix": listable.model_name,
                 "IsDesc": len(words) == 2 and words[1] == "desc", "ModelName": listable.model_name, "Filter": maps}
        return _ListOptions(size, token)

    if page_token == "":
        return fresh()
    size = _page_size(query)
    token = _decode_token(page_token, listable)
    if sort_by or filter_spec:
        other = fresh().token
        # list.Options.Matches uses reflect.DeepEqual on the filter, and the token's filter went through
        # JSON: numbers came back float64 and lists []interface{}, so only all-string filters can match.
        same = (token.get("SortByFieldName") == other["SortByFieldName"]
                and token.get("IsDesc", False) == other["IsDesc"]
                and token.get("Filter") == other["Filter"] and _all_strings(other["Filter"]))
        if not same:
            raise invalid_input("page token does not match the supplied sort by and/or filtering criteria. Either "
                                "specify the same criteria or leave the latter empty if page token is specified")
    return _ListOptions(size, token)


def _page(records: list[dict[str, Any]], listable: _Listable,
          opts: _ListOptions) -> tuple[list[dict[str, Any]], int, str]:
    """Filter, order, cut one page after the token's cursor; return (page, total_size, next_page_token)."""
    token = opts.token
    column = str(token["SortByFieldName"])
    desc = bool(token.get("IsDesc"))
    maps = token.get("Filter")
    matching = [r for r in records if _filter_matches(maps, listable, r)]

    def position(record: dict[str, Any]) -> tuple[Any, Any]:
        return listable.lookup(record, column), listable.lookup(record, listable.key_field)

    matching.sort(key=position, reverse=desc)
    rows = matching
    cursor = (token.get("SortByFieldValue"), token.get("KeyFieldValue"))
    if cursor[0] is not None and cursor[1] is not None:
        try:
            rows = [r for r in matching if (position(r) <= cursor if desc else position(r) >= cursor)]
        except TypeError:
            raise invalid_input_with_details("cursor type does not match its field", "Invalid package token") from None
    page, rest = rows[:opts.page_size], rows[opts.page_size:]
    next_token = ""
    if rest:
        sort_value, key_value = position(rest[0])
        next_token = _encode_token({**token, "SortByFieldValue": sort_value, "KeyFieldValue": key_value})
    return page, len(matching), next_token


# -- the store ------------------------------------------------------------------------------------


class KfpStore:
    """Pipelines, experiments and runs in memory, plus the server's identity and fault knobs.

    `runs` and `experiments` hold the fake's own records (datetimes, not strings; every field
    present); the API rendering (`get_run`, `add_*` return values, HTTP) omits empty fields as the
    real marshaller does. Every time comes from `clock()`. A lock makes the store safe to drive
    from a thread other than the server's.
    """

    def __init__(self, clock: Callable[[], datetime] = utcnow, *, multi_user: bool = False,
                 version: str = "2.14.0", v1_only: bool = False,
                 token: str | None = None, cookie: str | None = None,
                 header: tuple[str, str] | None = None, cancel_seconds: float = 2.0) -> None:
        self.clock = clock
        self.multi_user = multi_user
        self.version = version
        self.v1_only = v1_only
        self.token = token
        self.cookie = cookie  # "name=value", as one pair of the Cookie header
        self.header = header
        self.cancel_seconds = cancel_seconds
        self.runs: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.pipelines: dict[str, dict] = {}
        self.stuck_canceling: set[str] = set()
        # The runs that were CANCELING when last seen: `settle` runs before every request and looks
        # at these only (scanning 200,000 runs was 20 ms a request, which no real server spends).
        self._canceling: set[str] = set()
        self._ids = itertools.count(1)  # MLMD context and execution ids
        self._lock = threading.RLock()

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return parse_version(self.version)

    # -- seeding ------------------------------------------------------------------------------

    def add_pipeline(self, display_name: str, namespace: str | None = None) -> dict:
        """A pipeline with one version; the result also names that version (`pipeline_version_id`)."""
        with self._lock:
            now = self.clock()
            pipeline_id = str(uuid.uuid4())
            self.pipelines[pipeline_id] = {
                "pipeline_id": pipeline_id, "display_name": display_name, "description": "",
                "created_at": now, "namespace": namespace or "", "pipeline_version_id": str(uuid.uuid4()),
            }
            return {**self._render_pipeline(self.pipelines[pipeline_id]),
                    "pipeline_version_id": self.pipelines[pipeline_id]["pipeline_version_id"]}

    def add_experiment(self, display_name: str, namespace: str = "kubeflow") -> dict:
        with self._lock:
            experiment_id = str(uuid.uuid4())
            self.experiments[experiment_id] = {
                "experiment_id": experiment_id, "display_name": display_name, "description": "",
                "namespace": namespace, "storage_state": "AVAILABLE", "created_at": self.clock(),
                "last_run_created_at": None,
            }
            return self._render_experiment(self.experiments[experiment_id])

    def add_run(self, display_name: str, experiment_id: str, *, state: str = "RUNNING",
                created_at: datetime | None = None, scheduled_at: datetime | None = None,
                finished_at: datetime | None = None, pipeline_id: str | None = None,
                parameters: dict | None = None, error: str | None = None,
                tasks: list[dict] | None = None, storage_state: str = "AVAILABLE",
                recurring_run_id: str | None = None, run_id: str | None = None) -> dict:
        """Store a run as the persistence agent would have left it; return its API rendering.

        state_history gets PENDING at creation, RUNNING a few seconds after scheduling (for any
        state past PENDING), then the state itself (at finished_at for terminal states, else now).
        A run added as CANCELING settles to CANCELED like a terminated one.
        """
        _check_state(state)
        if storage_state not in STORAGE_STATES:
            raise ValueError(f"unknown storage state {storage_state!r}")
        with self._lock:
            experiment = self.experiments.get(experiment_id)
            if experiment is None:
                raise KeyError(f"no experiment {experiment_id}")
            pipeline = self.pipelines.get(pipeline_id) if pipeline_id else None
            if pipeline_id and pipeline is None:
                raise KeyError(f"no pipeline {pipeline_id}")
            now = self.clock()
            created = created_at or now
            scheduled = scheduled_at or created
            ended = (finished_at or now) if state in TERMINAL else None
            history: list[dict[str, Any]] = [{"update_time": created, "state": "PENDING"}]
            started = None
            if state != "PENDING":
                # Argo starts the workflow's first pod a few seconds after the run is scheduled.
                started = max(created, min(scheduled + timedelta(seconds=5), ended or max(now, scheduled)))
                history.append({"update_time": started, "state": "RUNNING"})
                if state != "RUNNING":
                    entry: dict[str, Any] = {"update_time": ended or max(now, started), "state": state}
                    if error:
                        entry["error"] = {"code": 2, "message": error}
                    history.append(entry)
            run_id = run_id or str(uuid.uuid4())
            if run_id in self.runs:
                raise ValueError(f"run {run_id} exists")
            run = {
                "run_id": run_id, "experiment_id": experiment_id, "display_name": display_name, "description": "",
                "namespace": experiment["namespace"], "storage_state": storage_state,
                "pipeline_id": pipeline["pipeline_id"] if pipeline else None,
                "pipeline_version_id": pipeline["pipeline_version_id"] if pipeline else None,
                "parameters": dict(parameters or {}), "service_account": SERVICE_ACCOUNT,
                "created_at": created, "scheduled_at": scheduled, "finished_at": ended,
                "state": state, "state_history": history,
                "error": {"code": 2, "message": error} if error else None,
                "tasks": [], "pipeline_context_id": 0, "pipeline_run_context_id": 0,
                "recurring_run_id": recurring_run_id,
                "canceling_since": history[-1]["update_time"] if state == "CANCELING" else None,
            }
            if tasks:
                run["pipeline_context_id"], run["pipeline_run_context_id"] = next(self._ids), next(self._ids)
                run["tasks"] = [self._task(t, started or created, ended, now) for t in tasks]
            self.runs[run_id] = run
            if state == "CANCELING":
                self._canceling.add(run_id)
            last = experiment["last_run_created_at"]
            experiment["last_run_created_at"] = created if last is None else max(last, created)
            return self._render_run(run)

    def _task(self, spec: dict[str, Any], started: datetime, ended: datetime | None, now: datetime) -> dict[str, Any]:
        state = spec.get("state", "RUNNING")
        _check_state(state)
        create = spec.get("create_time") or started
        start = spec.get("start_time") or create + timedelta(seconds=2)  # the pod's image pull, roughly
        end = spec.get("end_time") or ((ended or now) if state in TERMINAL else None)
        return {"task_id": spec.get("task_id") or str(uuid.uuid4()), "display_name": spec["display_name"],
                "state": state, "pod_name": spec.get("pod_name"), "create_time": create, "start_time": start,
                "end_time": end, "execution_id": next(self._ids)}

    # -- state changes ------------------------------------------------------------------------

    def set_state(self, run_id: str, state: str, *, error: str | None = None) -> None:
        """What the persistence agent reports: appends to state_history, sets finished_at when terminal."""
        _check_state(state)
        with self._lock:
            self._transition(self.runs[run_id], state, self.clock(), error)

    def _transition(self, run: dict[str, Any], state: str, when: datetime, error: str | None = None) -> None:
        # storage.UpdateRun appends to the history only when the state changed.
        history = run["state_history"]
        if not history or history[-1]["state"] != state or error:
            entry: dict[str, Any] = {"update_time": when, "state": state}
            if error:
                entry["error"] = {"code": 2, "message": error}
            history.append(entry)
        run["state"] = state
        run["finished_at"] = when if state in TERMINAL else None
        if error:
            run["error"] = {"code": 2, "message": error}
        elif state != "FAILED":
            run["error"] = None
        run["canceling_since"] = when if state == "CANCELING" else None
        if state == "CANCELING":
            self._canceling.add(run["run_id"])
        if state == "CANCELED":
            for task in run["tasks"]:  # terminating the workflow stops whatever was still going
                if task["state"] not in TERMINAL:
                    task["state"], task["end_time"] = "CANCELED", when

    def settle(self) -> None:
        """Finish cancellations whose time has come: CANCELING -> CANCELED `cancel_seconds` after it began."""
        with self._lock:
            now = self.clock()
            for run_id in list(self._canceling):
                run = self.runs.get(run_id)
                if run is None or run["state"] != "CANCELING" or run["canceling_since"] is None:
                    self._canceling.discard(run_id)  # deleted, or moved on some other way
                    continue
                since = run["canceling_since"]
                if run_id in self.stuck_canceling:
                    continue
                done = since + timedelta(seconds=self.cancel_seconds)
                if now >= done:
                    self._transition(run, "CANCELED", done)

    def terminate(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id, f"Failed to terminate run {run_id} due to error fetching the run")
            if run["state"] not in TERMINATABLE:
                raise invalid_input(f"Failed to terminate a run {run_id}. Row not found").wrap(
                    f"Failed to terminate run {run_id}")
            # run_store.TerminateRun sets State only: no state_history entry ("TODO" upstream).
            run["state"] = "CANCELING"
            run["canceling_since"] = self.clock()
            self._canceling.add(run_id)

    def retry(self, run_id: str) -> None:
        with self._lock:
            run = self._get(run_id, f"Failed to retry run {run_id} due to error fetching the run")
            if run["state"] not in RETRYABLE:
                # util.NewBadRequestError is codes.Aborted, which the gateway answers with 409.
                raise KfpError(10, f"Failed to retry run {run_id}: BadRequestError: Workflow must be Failed/Error to "
                                   "retry: workflow cannot be retried", "Workflow must be Failed/Error to retry")
            now = self.clock()
            self._transition(run, "RUNNING", now)
            for task in run["tasks"]:  # Argo reruns the nodes that did not succeed
                if task["state"] in ("FAILED", "CANCELED"):
                    task.update(state="RUNNING", start_time=now, end_time=None)

    def set_storage_state(self, run_id: str, storage_state: str) -> None:
        with self._lock:
            verb = "archive" if storage_state == "ARCHIVED" else "unarchive"
            self._get(run_id, f"Failed to {verb} run {run_id}")["storage_state"] = storage_state

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._get(run_id, f"Failed to delete run {run_id}")
            del self.runs[run_id]

    # -- reads --------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict | None:
        """The run as GET /apis/v2beta1/runs/{id} renders it (after settling cancellations), or None."""
        self.settle()
        with self._lock:
            run = self.runs.get(run_id)
            return self._render_run(run) if run is not None else None

    def _get(self, run_id: str, context: str) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None:
            raise not_found("Run", run_id).wrap(f"Failed to fetch run {run_id}").wrap(context)
        return run

    # -- rendering (snake_case, EmitUnpopulated false) -------------------------------------------

    def _render_run(self, run: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"experiment_id": run["experiment_id"], "run_id": run["run_id"],
                               "display_name": run["display_name"], "storage_state": run["storage_state"]}
        if run["description"]:
            out["description"] = run["description"]
        if run["pipeline_version_id"]:
            out["pipeline_version_reference"] = {"pipeline_id": run["pipeline_id"],
                                                 "pipeline_version_id": run["pipeline_version_id"]}
        else:
            # A run from a package carries its compiled IR instead (the oneof's other branch).
            out["pipeline_spec"] = {"pipelineInfo": {"name": re.sub(r"[^a-z0-9-]+", "-",
                                                                    run["display_name"].lower()).strip("-")},
                                    "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.9.0",
                                    "root": {"dag": {"tasks": {}}}}
        if run["parameters"]:
            out["runtime_config"] = {"parameters": copy.deepcopy(run["parameters"])}
        out["service_account"] = run["service_account"]
        # toApiRun builds all three from int seconds, so an unfinished run shows the epoch.
        out["created_at"] = rfc3339(run["created_at"])
        out["scheduled_at"] = rfc3339(run["scheduled_at"])
        out["finished_at"] = rfc3339(run["finished_at"])
        out["state"] = run["state"]
        if run["error"]:
            out["error"] = dict(run["error"])
        if run["tasks"] or run["pipeline_context_id"]:
            details: dict[str, Any] = {}
            if run["pipeline_context_id"]:
                details["pipeline_context_id"] = str(run["pipeline_context_id"])  # int64: a JSON string
                details["pipeline_run_context_id"] = str(run["pipeline_run_context_id"])
            if run["tasks"]:
                details["task_details"] = [self._render_task(run["run_id"], t) for t in run["tasks"]]
            out["run_details"] = details
        if run["recurring_run_id"]:
            out["recurring_run_id"] = run["recurring_run_id"]
        if run["state_history"]:
            out["state_history"] = [_render_status(s) for s in run["state_history"]]
        return out

    @staticmethod
    def _render_task(run_id: str, task: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"run_id": run_id, "task_id": task["task_id"], "display_name": task["display_name"],
                               "create_time": rfc3339(task["create_time"]), "start_time": rfc3339(task["start_time"]),
                               "end_time": rfc3339(task["end_time"]), "state": task["state"],
                               "execution_id": str(task["execution_id"])}
        if task["pod_name"]:
            out["child_tasks"] = [{"pod_name": task["pod_name"]}]  # the ChildTask oneof's pod_name branch
        return out

    @staticmethod
    def _render_experiment(exp: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"experiment_id": exp["experiment_id"], "display_name": exp["display_name"]}
        if exp["description"]:
            out["description"] = exp["description"]
        out["created_at"] = rfc3339(exp["created_at"])
        if exp["namespace"]:
            out["namespace"] = exp["namespace"]
        out["storage_state"] = exp["storage_state"]
        out["last_run_created_at"] = rfc3339(exp["last_run_created_at"])
        return out

    def _render_pipeline(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"pipeline_id": pipeline["pipeline_id"]}
        if self.version_tuple >= (2, 6):
            out["name"] = pipeline["display_name"]  # `name` arrived with 2.14's Kubernetes pipeline store
        out["display_name"] = pipeline["display_name"]
        if pipeline["description"]:
            out["description"] = pipeline["description"]
        out["created_at"] = rfc3339(pipeline["created_at"])
        if pipeline["namespace"]:
            out["namespace"] = pipeline["namespace"]
        return out

    def _render_run_v1(self, run: dict[str, Any]) -> dict[str, Any]:
        experiment = self.experiments.get(run["experiment_id"]) or {}
        refs: list[dict[str, Any]] = [{"key": {"type": "EXPERIMENT", "id": run["experiment_id"]},
                                       "name": experiment.get("display_name", ""), "relationship": "OWNER"}]
        if run["namespace"]:
            refs.append({"key": {"type": "NAMESPACE", "id": run["namespace"]}, "relationship": "OWNER"})
        out: dict[str, Any] = {"id": run["run_id"], "name": run["display_name"],
                               "storage_state": f"STORAGESTATE_{run['storage_state']}"}
        spec: dict[str, Any] = {}
        if run["pipeline_id"]:
            spec["pipeline_id"] = run["pipeline_id"]
            spec["pipeline_name"] = self.pipelines[run["pipeline_id"]]["display_name"]
            refs.append({"key": {"type": "PIPELINE_VERSION", "id": run["pipeline_version_id"]},
                         "relationship": "CREATOR"})
        if run["parameters"]:
            spec["parameters"] = [{"name": k, "value": json.dumps(v) if not isinstance(v, str) else v}
                                  for k, v in run["parameters"].items()]
        if spec:
            out["pipeline_spec"] = spec
        out["resource_references"] = refs
        out["service_account"] = run["service_account"]
        out["created_at"] = rfc3339(run["created_at"])
        out["scheduled_at"] = rfc3339(run["scheduled_at"])
        out["finished_at"] = rfc3339(run["finished_at"])
        out["status"] = V1_STATUS[run["state"]]
        if run["error"]:
            out["error"] = run["error"]["message"]
        return out

    # -- auth ---------------------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Every configured credential must be present. Missing and wrong both answer 401
        (Unauthenticated), as the API server's authenticators do; it never says 403 for a bad token."""
        if self.token is not None:
            given = headers.get("Authorization", "")
            if not given:
                raise KfpError(16, "Request header error: there is no user identity header.")
            if given != f"Bearer {self.token}":
                reason = "Review.Status.Authenticated is false. Error [invalid bearer token]"
                raise KfpError(16, f"Authentication failure: Unauthenticated: {reason}: Failed to authenticate "
                                   "token review", reason)
        if self.cookie is not None:
            pairs = [part.strip() for part in headers.get("Cookie", "").split(";")]
            if self.cookie not in pairs:
                raise KfpError(16, "Request header error: there is no user identity header.")
        if self.header is not None:
            name, value = self.header
            if headers.get(name) != value:
                raise KfpError(16, "Request header error: there is no user identity header.")


def _check_state(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"unknown runtime state {state!r}")


def _render_status(status: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"update_time": rfc3339(status["update_time"]), "state": status["state"]}
    if status.get("error"):
        out["error"] = dict(status["error"])
    return out


# -- the app --------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def make_kfp_app(store: KfpStore) -> web.Application:
    version = store.version_tuple

    def gateway_not_found() -> web.Response:
        if version < (2, 6):
            # grpc-gateway v1 with no proto error handler (as KFP sets it up) answers unknown paths in text.
            return web.Response(text="Not Found\n", status=404, content_type="text/plain")
        return _json({"code": 5, "message": "Not Found"}, 404)  # grpc-gateway v2's routing error

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        store.settle()  # time-driven transitions happen lazily, on every request
        path = request.path
        try:
            if not path.endswith("/healthz"):
                with store._lock:
                    store.authenticate(request.headers)
            if store.v1_only and path.startswith("/apis/v2beta1/"):
                return gateway_not_found()
            return await handler(request)
        except KfpError as exc:
            return _json(error_body(exc, version), exc.http_status)
        except web.HTTPNotFound:
            return gateway_not_found()
        except web.HTTPMethodNotAllowed:
            return _json({"code": 12, "message": "Method Not Allowed"}, 405)

    app = web.Application(middlewares=[middleware])

    async def healthz_v1(_: web.Request) -> web.Response:
        # Written by hand in main.go, spacing included; KFP 1.x set no Content-Type (Go sniffs text/plain).
        body = f'{{"commit_sha":"{COMMIT_SHA}", "tag_name":"{store.version}", "multi_user":{_bool(store.multi_user)}}}'
        return web.Response(text=body, content_type="text/plain" if store.v1_only else "application/json")

    async def healthz_v2(_: web.Request) -> web.Response:
        body = f'{{"commit_sha":"{COMMIT_SHA}", "tag_name":"{store.version}", "multi_user":{_bool(store.multi_user)}'
        if version >= (2, 6):
            body += ', "pipeline_store": "database"'  # added along with the Kubernetes-native pipeline store
        return web.Response(text=body + "}", content_type="application/json")

    def scope_runs(namespace: str, experiment_id: str, context: str) -> list[dict[str, Any]]:
        """server.listRuns: the namespace (multi-user only) or experiment the listing is confined to."""
        namespace = namespace if store.multi_user else ""  # ReplaceNamespace: single-user has one namespace
        if experiment_id:
            experiment = store.experiments.get(experiment_id)
            if experiment is None:
                raise not_found("Experiment", experiment_id).wrap(
                    f"Failed to list runs due to error fetching namespace for experiment {experiment_id}. "
                    "Try filtering based on namespace").wrap(context)
            namespace = experiment["namespace"] if store.multi_user else ""
        if store.multi_user and not namespace:
            raise invalid_input("A run cannot have an empty namespace in multi-user mode").wrap(
                "Failed to list runs due to authorization error. Check if you have permission to access "
                f"namespace {namespace}").wrap(context)
        return [r for r in store.runs.values()
                if (not experiment_id or r["experiment_id"] == experiment_id)
                and (not namespace or r["namespace"] == namespace)]

    async def list_runs(request: web.Request) -> web.Response:
        query = request.query
        with store._lock:
            try:
                opts = _list_options(RUN_LISTABLE, query)
            except KfpError as exc:
                raise exc.wrap("Failed to create list options") from None
            runs = scope_runs(query.get("namespace", ""), query.get("experiment_id", ""), "Failed to list runs")
            page, total, next_token = _page(runs, RUN_LISTABLE, opts)
            body: dict[str, Any] = {}
            if page:
                body["runs"] = [store._render_run(r) for r in page]
            if total:
                body["total_size"] = total
            if next_token:
                body["next_page_token"] = next_token
        return _json(body)

    async def get_run(request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        with store._lock:
            return _json(store._render_run(store._get(run_id, "Failed to get a run")))

    async def delete_run(request: web.Request) -> web.Response:
        try:
            store.delete_run(request.match_info["run_id"])
        except KfpError as exc:
            raise exc.wrap("Failed to delete a run") from None
        return _json({})

    async def run_verb(request: web.Request) -> web.Response:
        run_id, colon, verb = request.match_info["run_id"].rpartition(":")
        actions: dict[str, tuple[Callable[[str], None], str]] = {
            "terminate": (store.terminate, "Failed to terminate a run"),
            "retry": (store.retry, "Failed to retry a run"),
            "archive": (lambda rid: store.set_storage_state(rid, "ARCHIVED"), "Failed to archive a run"),
            "unarchive": (lambda rid: store.set_storage_state(rid, "AVAILABLE"), "Failed to unarchive a run"),
        }
        if not colon or verb not in actions:
            raise web.HTTPNotFound()
        action, context = actions[verb]
        try:
            action(run_id)
        except KfpError as exc:
            raise exc.wrap(context) from None
        return _json({})

    async def list_experiments(request: web.Request) -> web.Response:
        query = request.query
        with store._lock:
            try:
                opts = _list_options(EXPERIMENT_LISTABLE, query)
            except KfpError as exc:
                raise exc.wrap("Failed to create list options") from None
            namespace = query.get("namespace", "") if store.multi_user else ""
            if store.multi_user and not namespace:
                raise invalid_input("An experiment cannot have an empty namespace in multi-user mode").wrap(
                    "Failed to authorize with API").wrap("List experiments failed")
            scoped = [e for e in store.experiments.values() if not namespace or e["namespace"] == namespace]
            page, total, next_token = _page(scoped, EXPERIMENT_LISTABLE, opts)
            body: dict[str, Any] = {}
            if page:
                body["experiments"] = [store._render_experiment(e) for e in page]
            if total:
                body["total_size"] = total
            if next_token:
                body["next_page_token"] = next_token
        return _json(body)

    async def get_experiment(request: web.Request) -> web.Response:
        experiment_id = request.match_info["experiment_id"]
        with store._lock:
            experiment = store.experiments.get(experiment_id)
            if experiment is None:
                raise not_found("Experiment", experiment_id).wrap("Failed to fetch experiment")
            return _json(store._render_experiment(experiment))

    async def get_pipeline(request: web.Request) -> web.Response:
        pipeline_id = request.match_info["pipeline_id"]
        with store._lock:
            pipeline = store.pipelines.get(pipeline_id)
            if pipeline is None:
                raise not_found("Pipeline", pipeline_id).wrap(f"Failed to get a pipeline with id {pipeline_id}").wrap(
                    f"Failed to get a pipeline {pipeline_id}. Check error stack")
            return _json(store._render_pipeline(pipeline))

    async def list_runs_v1(request: web.Request) -> web.Response:
        query = request.query
        context = "Failed to list v1beta1 runs"
        ref_type = query.get("resource_reference_key.type", "")
        ref_id = query.get("resource_reference_key.id", "")
        if ref_type not in ("", "UNKNOWN_RESOURCE_TYPE", "EXPERIMENT", "NAMESPACE"):
            raise invalid_input(f"Unrecognized resource reference type {ref_type}").wrap(context)
        with store._lock:
            try:
                opts = _list_options(RUN_LISTABLE, query, op_field="op")
            except KfpError as exc:
                raise exc.wrap("Failed to create list options").wrap(context) from None
            runs = scope_runs(ref_id if ref_type == "NAMESPACE" else "",
                              ref_id if ref_type == "EXPERIMENT" else "", context)
            page, total, next_token = _page(runs, RUN_LISTABLE, opts)
            body: dict[str, Any] = {}
            if page:
                body["runs"] = [store._render_run_v1(r) for r in page]
            if total:
                body["total_size"] = total
            if next_token:
                body["next_page_token"] = next_token
        return _json(body)

    app.router.add_get("/apis/v1beta1/healthz", healthz_v1)
    app.router.add_get("/apis/v2beta1/healthz", healthz_v2)
    app.router.add_get("/apis/v2beta1/runs", list_runs)
    app.router.add_get("/apis/v2beta1/runs/{run_id}", get_run)
    app.router.add_delete("/apis/v2beta1/runs/{run_id}", delete_run)
    app.router.add_post("/apis/v2beta1/runs/{run_id}", run_verb)  # {id}:terminate and the other colon verbs
    app.router.add_get("/apis/v2beta1/experiments", list_experiments)
    app.router.add_get("/apis/v2beta1/experiments/{experiment_id}", get_experiment)
    app.router.add_get("/apis/v2beta1/pipelines/{pipeline_id}", get_pipeline)
    app.router.add_get("/apis/v1beta1/runs", list_runs_v1)
    return app


def _bool(value: bool) -> str:
    return "true" if value else "false"
