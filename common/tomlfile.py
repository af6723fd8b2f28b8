"""The one TOML reader of node and coordinator configs: errors name the file and the key.

`read_toml` reads a file with `tomllib` and returns its top level as a `Section`; a
`Section` reads one table strictly (unknown keys refused, types checked) and every error
it raises says which file and which dotted key is wrong, and how to fix it where it can.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from common.errors import ConfigError

__all__ = ["Section", "read_toml"]


def read_toml(path: str | Path) -> Section:
    """The top-level table of a TOML config file.

    Raises:
        ConfigError: When the file is missing, unreadable, not UTF-8 or not valid TOML.
    """
    file = Path(path).resolve()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file", field="") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not UTF-8 text: {exc.reason} at byte {exc.start}",
            hint="save the config as UTF-8",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}", hint="check quoting") from None
    return Section(file, "", raw)


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

    def text(self, name: str, hint: str = "") -> str:
        """A required string that is not empty (an id, an address, a file name)."""
        value: str = self.get(name, str)
        if not value.strip():
            raise self.error(name, "is empty", hint=hint)
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

    def tables(self, name: str) -> list[Section]:
        """An array of tables (``[[name]]``), each read as ``name[i]``; [] when absent."""
        entries = self.get(name, list, [])
        return [Section(self.file, f"{self.key(name)}[{i}]", t) for i, t in enumerate(entries)]
