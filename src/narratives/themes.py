"""Narrative themes as data: the themes file, its schema, and the checks that explain mistakes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from narratives.datafiles import read_toml_tables
from narratives.errors import NarrativesError

DEFAULT_THEMES = "default"  # `--themes default` names the themes file shipped with the package
MIN_EXAMPLES = 3
_ID = re.compile(r"^[a-z][a-z0-9_]{1,48}$")
_KEYS = {"id", "name", "description", "examples", "counter_examples", "proxies"}


class ThemesFileError(NarrativesError):
    """The themes file is missing or does not follow the documented schema."""


@dataclass(frozen=True)
class Proxy:
    """An asset a narrative is set beside; with a benchmark, the return spread asset − benchmark."""

    asset: str
    benchmark: str | None = None

    @property
    def label(self) -> str:
        return f"{self.asset}−{self.benchmark}" if self.benchmark else self.asset


@dataclass(frozen=True)
class Theme:
    """One narrative: what it means, examples that carry it, and assets it is set beside."""

    id: str
    name: str
    description: str
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...] = ()
    proxies: tuple[Proxy, ...] = field(default_factory=tuple)


def default_themes_path() -> Path:
    return Path(str(resources.files("narratives") / "data" / "themes.toml"))


def load_themes(path: str | Path = DEFAULT_THEMES) -> list[Theme]:
    """Read and validate a themes file; every mistake is reported with where and how to fix it."""
    path = default_themes_path() if str(path) == DEFAULT_THEMES else Path(path)
    tables = read_toml_tables(
        path,
        "theme",
        what="themes file",
        error=ThemesFileError,
        empty="defines no themes: add [[theme]] tables with id, name, description and "
        "examples (see the comments at the top of the shipped themes.toml)",
    )
    themes = [_theme(table, f"{path}, theme #{n}") for n, table in enumerate(tables, start=1)]
    seen: set[str] = set()
    for theme in themes:
        if theme.id in seen:
            raise ThemesFileError(f"{path}: theme id {theme.id!r} is defined twice")
        seen.add(theme.id)
    return themes


def _theme(table: dict[str, object], where: str) -> Theme:
    theme_id = table.get("id")
    if not isinstance(theme_id, str) or not _ID.match(theme_id):
        raise ThemesFileError(
            f"{where}: id must be snake_case letters, digits and underscores (e.g. "
            f'"soft_landing"), got {theme_id!r}'
        )
    where = f"{where} ({theme_id})"
    unknown = set(table) - _KEYS
    if unknown:
        raise ThemesFileError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    name = _text(table, "name", where)
    description = " ".join(_text(table, "description", where).split())
    examples = _texts(table, "examples", where, required=True)
    if len(examples) < MIN_EXAMPLES:
        raise ThemesFileError(
            f"{where}: give at least {MIN_EXAMPLES} example paragraphs that carry the narrative "
            f"(found {len(examples)}); they are what an untrained theme is scored against"
        )
    counter = _texts(table, "counter_examples", where, required=False)
    return Theme(
        id=theme_id,
        name=name,
        description=description,
        examples=examples,
        counter_examples=counter,
        proxies=_proxies(table.get("proxies", []), where),
    )


def _text(table: dict[str, object], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ThemesFileError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _texts(table: dict[str, object], key: str, where: str, *, required: bool) -> tuple[str, ...]:
    value = table.get(key, [] if not required else None)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ThemesFileError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(" ".join(v.split()) for v in value)


def _proxies(value: object, where: str) -> tuple[Proxy, ...]:
    if not isinstance(value, list):
        raise ThemesFileError(f'{where}: proxies must be a list like [{{ asset = "IWM" }}]')
    proxies = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("asset"), str):
            raise ThemesFileError(
                f'{where}: each proxy needs an asset, e.g. {{ asset = "IWM", benchmark = "SPY" }}'
            )
        benchmark = item.get("benchmark")
        if benchmark is not None and not isinstance(benchmark, str):
            raise ThemesFileError(f"{where}: a proxy's benchmark must be a ticker string")
        extra = set(item) - {"asset", "benchmark"}
        if extra:
            raise ThemesFileError(f"{where}: unknown proxy keys {sorted(extra)}")
        proxies.append(
            Proxy(asset=item["asset"].upper(), benchmark=benchmark and benchmark.upper())
        )
    return tuple(proxies)
