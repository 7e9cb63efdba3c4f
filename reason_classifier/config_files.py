"""Configuration files people edit by hand (taxonomy, review file, offers, service settings): YAML checked by pydantic.

Every mistake is reported as `file, line N: dotted.key: message`, one line per problem, so that a
person can go to the line; YAML that is not a mapping, is not valid, or repeats a key (which YAML
would silently merge, last one winning) is refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
Location = tuple[str | int, ...]
EXPECTED = "a mapping at the top"


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: its data, where it came from, and the line of every key and list item in it."""

    data: Any
    source: str
    lines: dict[Location, int] = field(default_factory=dict)

    def line_of(self, location: Location) -> int | None:
        """The line of `location`, or of the nearest enclosing key the file has (pydantic may point deeper)."""
        for n in range(len(location), -1, -1):
            if location[:n] in self.lines:
                return self.lines[location[:n]]
        return None

    def where(self, location: Location) -> str:
        """`file, line N` for a key path (`file` alone when the line is unknown)."""
        line = self.line_of(location)
        return f"{self.source}, line {line}" if line else self.source


def read_yaml(
    path: str | Path,
    *,
    error: type[ConfigError] = ConfigError,
    what: str = "config file",
    expected: str = EXPECTED,
    empty: bool = False,
) -> YamlDocument:
    """Read and parse a YAML file; `what` names it in a read error. See `parse_yaml` for the rest."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}") from None
    return parse_yaml(text, str(path), error=error, expected=expected, empty=empty)


def parse_yaml(
    text: str, source: str, *, error: type[ConfigError] = ConfigError, expected: str = EXPECTED, empty: bool = False
) -> YamlDocument:
    """YAML text to data plus the line of every key path.

    Raises `error` for invalid YAML, a repeated key, or a top level that is not a mapping (`expected`
    says what it should be); an empty file is an empty mapping when `empty` is true.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as problem:
        raise error(f"{source}: not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    if data is None and empty:
        return YamlDocument({}, source)
    if not isinstance(data, dict):
        raise error(f"{source}: expected {expected}")
    assert node is not None  # the document is a mapping, so it has a node
    lines: dict[Location, int] = {}

    def walk(node: yaml.Node, path: Location) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    dotted = ".".join(map(str, (*path, key)))
                    raise error(f"{source}, line {key_node.start_mark.line + 1}: {dotted}: duplicate key")
                seen.add(key)
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(node, ())
    return YamlDocument(data, source, lines)


def dotted(location: Location) -> str:
    return ".".join(map(str, location)) or "(top level)"


def describe(
    problem: ValidationError,
    document: YamlDocument,
    name: Callable[[Location], str] = dotted,
) -> list[str]:
    """One `file, line N: key: message` per problem of a validation; `name` turns a key path into its name."""
    messages = []
    for detail in problem.errors():
        location = tuple(detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        messages.append(f"{document.where(location)}: {name(location)}: {message}")
    return messages


def validate(
    model: type[Model],
    document: YamlDocument,
    *,
    error: type[ConfigError] = ConfigError,
    what: str = "config file",
    name: Callable[[Location], str] = dotted,
) -> Model:
    """The document as `model`, or `error` listing every problem on its own line (`invalid <what>:`)."""
    try:
        return model.model_validate(document.data)
    except ValidationError as problem:
        raise error(f"invalid {what}:\n  " + "\n  ".join(describe(problem, document, name))) from None


def load(
    model: type[Model],
    path: str | Path,
    *,
    error: type[ConfigError] = ConfigError,
    what: str = "config file",
    expected: str = EXPECTED,
) -> Model:
    """Read, parse and validate a configuration file in one call."""
    return validate(model, read_yaml(path, error=error, what=what, expected=expected), error=error, what=what)
