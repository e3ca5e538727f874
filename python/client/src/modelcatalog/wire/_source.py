"""Python source built line by line and compiled into one function, with its constants bound."""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any


class Source:
    """The body of one generated function and the names its code refers to.

    Everything that is not a local variable (tags, classes, other compiled functions) is bound
    as a global of the function by ``constant``, so the generated text holds only names, the
    repr of field names and small integers: nothing read from a message ever becomes code.
    """

    def __init__(self, function_name: str, helpers: dict[str, Any]) -> None:
        self.function_name = function_name
        self._namespace: dict[str, Any] = dict(helpers)
        self._names_by_id: dict[int, str] = {}
        self._lines: list[str] = []

    def constant(self, value: object, prefix: str = "K") -> str:
        """The global name the generated code uses for ``value``."""
        name = self._names_by_id.get(id(value))
        if name is None:
            name = f"{prefix}{len(self._names_by_id)}"
            self._names_by_id[id(value)] = name
            self._namespace[name] = value
        return name

    def add(self, indent: int, *lines: str) -> None:
        self._lines.extend("    " * indent + line for line in lines)

    def compile(self, description: str) -> Callable[..., Any]:
        """The generated function; its source is registered so tracebacks and profilers show it."""
        text = "\n".join(self._lines) + "\n"
        filename = f"<modelcatalog.wire {description}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
        # The text is built from this package's templates, field names (as repr) and bound
        # names only, so executing it runs no input of any message.
        exec(compile(text, filename, "exec"), self._namespace)  # noqa: S102
        function: Callable[..., Any] = self._namespace[self.function_name]
        return function
