"""Label and field selectors, parsed the way the API server parses them (400 on bad syntax)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.kube.errors import ApiError

__all__ = ["Selector", "parse_field_selector", "parse_label_selector"]

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SET_REQ = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_CMP_REQ = re.compile(r"^\s*(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_REQ = re.compile(r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=(),]+)\s*$")


@dataclass(frozen=True)
class Selector:
    """A conjunction of predicates over one object; empty matches everything."""

    predicates: tuple[Callable[[Mapping[str, Any]], bool], ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(p(obj) for p in self.predicates)

    def __and__(self, other: Selector) -> Selector:
        return Selector(self.predicates + other.predicates)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: ``a in (x,y),b`` -> ``["a in (x,y)", "b"]``."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _check_key(key: str, raw: str) -> None:
    if not _KEY.match(key) or len(key.rsplit("/", maxsplit=1)[-1]) > 63:
        raise ApiError.bad_request(f"unable to parse requirement: invalid label key {key!r} in {raw!r}")


Predicate = Callable[[Mapping[str, Any]], bool]


def _label_in(key: str, values: frozenset[str]) -> Predicate:
    return lambda o: key in _labels(o) and str(_labels(o)[key]) in values


def _label_not_in(key: str, values: frozenset[str]) -> Predicate:
    return lambda o: key not in _labels(o) or str(_labels(o)[key]) not in values


def _label_exists(key: str, *, present: bool) -> Predicate:
    return lambda o: (key in _labels(o)) is present


def parse_label_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return Selector()
    preds: list[Predicate] = []
    for raw in _split_top_level(text):
        if m := _SET_REQ.match(raw):
            key = m["key"]
            _check_key(key, raw)
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            preds.append(_label_in(key, values) if m["op"] == "in" else _label_not_in(key, values))
        elif m := _CMP_REQ.match(raw):
            key = m["key"]
            _check_key(key, raw)
            value = frozenset({m["value"]})
            preds.append(_label_not_in(key, value) if m["op"] == "!=" else _label_in(key, value))
        elif m := _EXISTS_REQ.match(raw):
            key = m["key"]
            _check_key(key, raw)
            preds.append(_label_exists(key, present=not m["neg"]))
        else:
            raise ApiError.bad_request(f"unable to parse requirement: found {raw!r}, expected a requirement")
    return Selector(tuple(preds))


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _field_equals(field: str, value: str, *, negate: bool) -> Predicate:
    return lambda o: (_field_value(o, field) == value) is not negate


def parse_field_selector(text: str | None, supported: Sequence[str]) -> Selector:
    """Field selectors support ``=``, ``==`` and ``!=`` on the fields the resource type indexes."""
    if not text or not text.strip():
        return Selector()
    allowed = {"metadata.name", "metadata.namespace", *supported}
    preds: list[Predicate] = []
    for raw in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", raw)
        if not m:
            raise ApiError.bad_request(f"invalid selector: {text!r}; can't understand {raw!r}")
        field, op, value = m.groups()
        if field not in allowed:
            raise ApiError.bad_request(f"field label not supported: {field}")
        preds.append(_field_equals(field, value, negate=op == "!="))
    return Selector(tuple(preds))
