"""Reading TOML tables with errors that name the file and the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from common.errors import ConfigError

__all__ = ["Section"]


class Section:
    """A TOML table being read: tracks the file and key path for error messages."""

    def __init__(self, file: Path, path: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ConfigError(
                f"{file}: [{path}] must be a table", field=path, hint="see DESIGN.md section 6"
            )
        self.file, self.path, self.table = file, path, table

    def key(self, name: str) -> str:
        """The dotted path of a key in this table."""
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str, hint: str = "") -> ConfigError:
        """A ConfigError naming the file and the key."""
        return ConfigError(
            f"{self.file}: {self.key(name)}: {message}", field=self.key(name), hint=hint
        )

    def check_keys(self, allowed: set[str]) -> None:
        """Raise on the first key that is not allowed here."""
        for name in self.table:
            if name not in allowed:
                raise self.error(
                    name, "unknown key", hint=f"allowed keys here: {', '.join(sorted(allowed))}"
                )

    def get(self, name: str, kind: type, default: Any = ...) -> Any:
        """A value of the given type; required when no default is given."""
        if name not in self.table:
            if default is ...:
                raise self.error(name, "missing required key")
            return default
        value = self.table[name]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(name, f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    def positive(self, name: str, default: Any = ...) -> float:
        """A positive, finite number."""
        value = float(self.get(name, float, default))
        if not (math.isfinite(value) and value > 0):
            raise self.error(name, f"must be a positive finite number, got {value}")
        return value

    def sub(self, name: str, required: bool = True) -> Section:
        """A nested table (an empty one when optional and absent)."""
        if name not in self.table and not required:
            return Section(self.file, self.key(name), {})
        return Section(self.file, self.key(name), self.get(name, dict))
