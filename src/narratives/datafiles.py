"""TOML data files (the feeds list, the themes file): read them with errors that say where."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from narratives.errors import NarrativesError


def read_toml(path: Path, *, what: str, error: type[NarrativesError]) -> dict[str, Any]:
    """A TOML file's document; a missing file or bad TOML raise `error`.

    `what` names the file in messages ("feeds file").
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"no {what} at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from exc


def read_toml_tables(
    path: Path, key: str, *, what: str, error: type[NarrativesError], empty: str
) -> list[Any]:
    """The `[[key]]` tables of a TOML file; a missing file, bad TOML or no tables raise `error`.

    `what` names the file in messages ("feeds file"); `empty` finishes the message for a file
    without tables, after its path.
    """
    tables = read_toml(path, what=what, error=error).get(key)
    if not isinstance(tables, list) or not tables:
        raise error(f"{path} {empty}")
    return tables
