"""Reads a tier file's YAML into plain data and remembers the line of every key.

Parsing goes only as far as YAML's node tree (PyYAML's compose, backed by
libyaml when present: ruamel.yaml's pure-Python composer takes seconds on a
10,000-tenant file). Building plain data ourselves from the nodes lets us
report duplicate keys instead of silently keeping one, keep the line of every
key, and read plain scalars by the YAML 1.2 core schema, where `yes`, `on`
and `no` are text rather than booleans.

Before composing, one pass over the parser's event stream (libyaml's parser is
iterative) checks the document against YamlLimits: libyaml's composer recurses
once per level of nesting and crashes the interpreter on deep enough input, and
every value costs time and memory to build. The pass stops at the first event
past a limit, so no input costs more than the limits allow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.events import (
    AliasEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode

Path = tuple[str, ...]

_PLAIN: Final = "!plain"
_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL_RE: Final = re.compile(r"(?:~|null|Null|NULL)?")
_BOOL_RE: Final = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT_DEC_RE: Final = re.compile(r"[-+]?[0-9]+")
_INT_OCT_RE: Final = re.compile(r"0o[0-7]+")
_INT_HEX_RE: Final = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF_RE: Final = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN_RE: Final = re.compile(r"\.(?:nan|NaN|NAN)")

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Yaml12Loader(_Loader):  # type: ignore[misc]
    """Marks plain scalars so they are read by the 1.2 core schema, not PyYAML's 1.1 rules."""

    def resolve(self, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        resolved: str = super().resolve(kind, value, implicit)
        return resolved


@dataclass(frozen=True)
class YamlLimits:
    max_depth: int
    """Lists and mappings nested in one another (a scalar at the top is depth 0)."""
    max_values: int
    """Keys, scalar values, lists, mappings and aliases in the whole document."""
    largest_number: int
    """A whole number with more digits than this one is reported as too large instead of being read."""


# An event's effect on (depth, values): collections open and close, every node counts once.
_EVENT_STEPS: Final[dict[type[Event], tuple[int, int]]] = {
    MappingStartEvent: (1, 1),
    SequenceStartEvent: (1, 1),
    MappingEndEvent: (-1, 0),
    SequenceEndEvent: (-1, 0),
    ScalarEvent: (0, 1),
    AliasEvent: (0, 1),
}


@dataclass(frozen=True)
class Duplicate:
    path: Path
    first_line: int
    line: int


@dataclass(frozen=True)
class SourceIssue:
    """Something wrong at the YAML level, before any tier-file rule applies."""

    line: int | None
    path: Path
    message: str


@dataclass
class SourceDocument:
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)
    issues: list[SourceIssue] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """Line of ``path``, or of its nearest ancestor that is in the file (for a missing key)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class YamlSyntaxError(Exception):
    """The text is not YAML, or is past the limits: nothing of it can be checked further."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_yaml(text: str, limits: YamlLimits) -> SourceDocument:
    """Parse ``text``; raise YamlSyntaxError when it is not YAML at all or is past ``limits``."""
    try:
        _check_limits(text, limits)
        root = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise YamlSyntaxError(
            line,
            f"character U+{error.character:04X} at line {line} is not allowed in YAML (control characters "
            "other than tab and line breaks are not); remove it.",
        ) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(None, f"not valid YAML: {_one_line(str(error))}") from None
    document = SourceDocument(data=None)
    if root is not None:
        document.lines[()] = root.start_mark.line + 1
        document.data = _Builder(document, limits.largest_number).build(root, ())
    return document


def _check_limits(text: str, limits: YamlLimits) -> None:
    depth = values = 0
    for event in yaml.parse(text, Loader=_Yaml12Loader):
        depth_step, value_step = _EVENT_STEPS.get(type(event), (0, 0))
        depth += depth_step
        values += value_step
        if depth > limits.max_depth:
            line = event.start_mark.line + 1
            raise YamlSyntaxError(
                line,
                f"lists and mappings nested more than {limits.max_depth} levels deep at line {line}; a "
                "tier file needs 4 (the file, `tiers:`, a tier, its `throttle:`). Check that this is the "
                "tier file, and the brackets and indentation above this line.",
            )
        if values > limits.max_values:
            line = event.start_mark.line + 1
            raise YamlSyntaxError(
                line,
                f"more than {limits.max_values:,} values (keys, values, lists and mappings) by line "
                f"{line}; the largest valid tier file (AWS's limits, every field written out) has 85,405. "
                "Check that this is the tier file, or move tenants to a stack in another region or account.",
            )


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = error.problem_mark or error.context_mark
    what = error.problem or error.context or "unreadable YAML"
    if error.problem and error.context:
        # libyaml's contexts read "while parsing ..." or "expected ...": put each where it reads as English.
        if error.context.startswith("while"):
            what = f"{error.problem} ({error.context})"
        else:
            what = f"{error.context}, {error.problem}"
    if mark is None:
        return YamlSyntaxError(
            None, f"YAML syntax error: {what}. Fix the YAML (docs/tier-file.md shows the format)."
        )
    fix = (
        "A tier file is one YAML document: remove the `---` line and what follows, or merge the two."
        if "single document" in what
        else "Check the indentation, colons and quotes there (docs/tier-file.md shows the format)."
    )
    return YamlSyntaxError(
        mark.line + 1, f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {what}. {fix}"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Builder:
    def __init__(self, document: SourceDocument, largest_number: int) -> None:
        self._document = document
        self._largest_number = largest_number
        self._built: dict[int, Any] = {}
        self._building: set[int] = set()

    def build(self, node: Node, path: Path) -> Any:
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        # An alias makes several places share one node: build it once, so
        # nested aliases (the "billion laughs") cost nothing.
        key = id(node)
        if key in self._built:
            return self._built[key]
        if key in self._building:
            self._issue(node, path, "this alias refers to the node that contains it; remove the recursion.")
            return None
        self._building.add(key)
        try:
            value = self._mapping(node, path) if isinstance(node, MappingNode) else self._sequence(node, path)
        finally:
            self._building.discard(key)
        self._built[key] = value
        return value

    def _mapping(self, node: Node, path: Path) -> Any:
        if node.tag != _MAP:
            self._issue(node, path, f"unsupported YAML tag {node.tag}; remove it.")
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self._issue(key_node, path, "a key must be a plain name, not a list or mapping.")
                continue
            # Keys are names: the text as written, so `null:` or `true:` is a name like any other.
            key = str(key_node.value)
            child = (*path, key)
            if key == "<<" and key_node.tag == _PLAIN:
                self._issue(
                    key_node,
                    child,
                    "YAML merge keys (<<) are not supported here; write the fields out in full.",
                )
                continue
            if key in first_lines:
                self._document.duplicates.append(Duplicate(child, first_lines[key], line))
                continue
            first_lines[key] = line
            self._document.lines[child] = line
            result[key] = self.build(value_node, child)
        return result

    def _sequence(self, node: Node, path: Path) -> Any:
        if node.tag != _SEQ:
            self._issue(node, path, f"unsupported YAML tag {node.tag}; remove it.")
        items = []
        for index, item in enumerate(node.value):
            child = (*path, str(index))
            self._document.lines.setdefault(child, item.start_mark.line + 1)
            items.append(self.build(item, child))
        return items

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        text: str = node.value
        tag = _resolve_plain(text) if node.tag == _PLAIN else node.tag
        if tag == _INT and _longer_than(text, len(str(self._largest_number))):
            self._issue(node, path, self._too_large(text))
            return None
        try:
            return _construct(tag, text)
        except ValueError:
            self._issue(
                node,
                path,
                f"{text!r} cannot be read as YAML {tag.rsplit(':', 1)[-1]}; fix or remove the tag.",
            )
        except KeyError:
            self._issue(node, path, f"unsupported YAML tag {tag}; remove it.")
        return None

    def _too_large(self, text: str) -> str:
        shown = (
            text
            if len(text) <= _SHOWN_CHARACTERS
            else f"{text[:_SHOWN_CHARACTERS]}… ({len(text):,} characters)"
        )
        if text.startswith("-"):
            return (
                f"the whole number {shown} is out of range: numbers in a tier file go from 0 to "
                f"{self._largest_number:,} (docs/tier-file.md gives each field's range)."
            )
        return (
            f"the whole number {shown} is too large: the maximum is {self._largest_number:,}, the largest "
            "number any field of a tier file takes (docs/tier-file.md gives each field's range)."
        )

    def _issue(self, node: Node, path: Path, message: str) -> None:
        self._document.issues.append(SourceIssue(node.start_mark.line + 1, path, message))


_SHOWN_CHARACTERS: Final = 20


def _longer_than(text: str, digits: int) -> bool:
    """Whether the whole number ``text`` (which the int tag matched) has more than ``digits`` decimal digits.

    Decimal text is not converted: CPython refuses (ValueError) or takes quadratic time on long ones.
    """
    if _INT_DEC_RE.fullmatch(text):
        return len(text.lstrip("+-").lstrip("0")) > digits
    if _INT_OCT_RE.fullmatch(text) or _INT_HEX_RE.fullmatch(text):
        # Powers of two convert in linear time, whatever their length.
        smallest_too_long: int = 10**digits
        return int(text[2:], 8 if text[1] == "o" else 16) >= smallest_too_long
    return False


def _resolve_plain(text: str) -> str:
    if _NULL_RE.fullmatch(text):
        return _NULL
    if _BOOL_RE.fullmatch(text):
        return _BOOL
    if _INT_DEC_RE.fullmatch(text) or _INT_OCT_RE.fullmatch(text) or _INT_HEX_RE.fullmatch(text):
        return _INT
    if _FLOAT_RE.fullmatch(text) or _INF_RE.fullmatch(text) or _NAN_RE.fullmatch(text):
        return _FLOAT
    return _STR


def _construct(tag: str, text: str) -> Any:
    """The Python value of a scalar; ValueError if the text does not fit the tag, KeyError for other tags."""
    if tag == _STR:
        return text
    if tag == _NULL:
        if not _NULL_RE.fullmatch(text):
            raise ValueError(text)
        return None
    if tag == _BOOL:
        if not _BOOL_RE.fullmatch(text):
            raise ValueError(text)
        return text.lower() == "true"
    if tag == _INT:
        if _INT_OCT_RE.fullmatch(text):
            return int(text[2:], 8)
        if _INT_HEX_RE.fullmatch(text):
            return int(text[2:], 16)
        if not _INT_DEC_RE.fullmatch(text):
            raise ValueError(text)
        return int(text)
    if tag == _FLOAT:
        if _INF_RE.fullmatch(text):
            return -math.inf if text.startswith("-") else math.inf
        if _NAN_RE.fullmatch(text):
            return math.nan
        if not _FLOAT_RE.fullmatch(text):
            raise ValueError(text)
        return float(text)
    raise KeyError(tag)
