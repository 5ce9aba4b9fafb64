"""Reading a buildspec's YAML node by node, so that every error names the key and the line.

The document is composed, not constructed: scalars keep their exact text (``1.10`` stays
``1.10``, a command ``true`` stays ``true``), anchors and merge keys still work, and each
accessor checks the shape it expects and raises `BuildspecError` saying where the document
went wrong, e.g. ``line 7: phases.build.commands must be a list of strings``; a document that
is not YAML at all says so with the line and column of the problem. Keys a section does not
know are not errors: `Document.unknown` collects them per section, for CodeBuild's "possible
syntax errors" warning.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["BuildspecError", "Document", "content_line"]

try:
    _Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

_NULL = "tag:yaml.org,2002:null"
_TRUE = frozenset({"yes", "true", "on", "y"})
_FALSE = frozenset({"no", "false", "off", "n"})


class BuildspecError(Exception):
    """A buildspec that cannot be used; the message says what is wrong and where."""


def _line(node: Node) -> str:
    return f"line {node.start_mark.line + 1}: "


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``line 3, column 7: <problem> (<context> at line 2, column 5)``."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem is None:
        return f"not valid YAML: {error}"
    where = _at(error.problem_mark)
    text = f"not valid YAML: {where + ': ' if where else ''}{error.problem}"
    if error.context:
        context_at = _at(error.context_mark)
        text += f" ({error.context}{' at ' + context_at if context_at else ''})"
    return text


def content_line(node: Node) -> int:
    """The 1-based line a scalar's text starts on (a ``|`` or ``>`` block starts below)."""
    line = int(node.start_mark.line) + 1
    if isinstance(node, ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


class Document:
    """One composed YAML document with typed, checked accessors over its nodes."""

    def __init__(self, text: str) -> None:
        self._loader = _Loader(text)
        # Section -> keys it does not know, in the order met.
        self.unknown: dict[str, list[str]] = {}
        try:
            self.root = self._loader.get_single_node()
        except yaml.YAMLError as error:
            raise BuildspecError(_yaml_problem(error)) from None
        finally:
            self._loader.dispose()

    def is_null(self, node: Node | None) -> bool:
        return node is None or (isinstance(node, ScalarNode) and node.tag == _NULL)

    def mapping(self, node: Node | None, where: str) -> dict[str, Node]:
        """The entries of a mapping with string keys (merge keys applied)."""
        if not isinstance(node, MappingNode):
            at = _line(node) if node is not None else ""
            raise BuildspecError(f"{at}{where} must be a mapping")
        self._loader.flatten_mapping(node)
        entries: dict[str, Node] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _NULL:
                raise BuildspecError(f"{_line(key)}{where} has a key that is not a string")
            entries[str(key.value)] = value
        return entries

    def items(self, node: Node | None, where: str) -> Iterator[tuple[str, str, Node]]:
        """(key, where-of-value, value) for each entry of a mapping."""
        for key, value in self.mapping(node, where).items():
            yield key, f"{where}.{key}", value

    def check_keys(self, entries: dict[str, Node], allowed: frozenset[str], section: str) -> None:
        """Note the keys of ``entries`` that ``section`` does not know (never an error)."""
        for key in entries:
            if key not in allowed:
                self.unknown.setdefault(section, []).append(key)

    def string(self, node: Node | None, where: str, *, null: str | None = None) -> str:
        """A scalar's exact text; ``null`` is what an empty value means (None: not allowed)."""
        if self.is_null(node):
            if null is not None:
                return null
            at = _line(node) if node is not None else ""
            raise BuildspecError(f"{at}{where} must not be empty")
        if not isinstance(node, ScalarNode):
            assert node is not None
            hint = " (quote values that contain ': ')" if isinstance(node, MappingNode) else ""
            raise BuildspecError(f"{_line(node)}{where} must be a string{hint}")
        return str(node.value)

    def strings(self, node: Node | None, where: str, *, single: bool = False) -> tuple[str, ...]:
        """A list of scalars; with ``single`` a lone scalar counts as a list of one."""
        return tuple(text for text, _ in self.lines(node, where, single=single))

    def lines(
        self, node: Node | None, where: str, *, single: bool = False
    ) -> tuple[tuple[str, int], ...]:
        """`strings` with the line each one's text starts on."""
        if single and isinstance(node, ScalarNode) and not self.is_null(node):
            return ((str(node.value), content_line(node)),)
        if not isinstance(node, SequenceNode):
            at = _line(node) if node is not None else ""
            raise BuildspecError(f"{at}{where} must be a list of strings")
        values: list[tuple[str, int]] = []
        for index, item in enumerate(node.value):
            if not isinstance(item, ScalarNode) or self.is_null(item):
                hint = (
                    " (quote commands that contain ': ')" if isinstance(item, MappingNode) else ""
                )
                raise BuildspecError(
                    f"{_line(item)}{where} must be a list of strings: item {index + 1} is not"
                    f" a string{hint}"
                )
            values.append((str(item.value), content_line(item)))
        return tuple(values)

    def boolean(self, node: Node | None, where: str) -> bool:
        text = self.string(node, where, null="no").strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        assert node is not None
        raise BuildspecError(f"{_line(node)}{where} must be yes or no, not {text!r}")

    def line(self, node: Node | None) -> str:
        return _line(node) if node is not None else ""
