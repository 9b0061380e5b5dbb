"""The entity knowledge base: the shipped core, KBs built from listing files, and user additions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from narratives.datafiles import read_toml
from narratives.errors import NarrativesError

KINDS = ("company", "fund", "index", "crypto", "commodity", "person")
DEFAULT_BUILT_KB = Path("corpus/kb.jsonl")  # made by `narratives kb build`, never committed
_ID = re.compile(r"^[a-z]+:[A-Za-z0-9.&\-_/]+$")
_KEYS = {
    "id",
    "kind",
    "name",
    "ticker",
    "other_tickers",
    "aliases",
    "ambiguous",
    "role",
    "affiliation",
    "short_names",
    "symbols",
    "tracks",
    "exchange",
}


class KnowledgeBaseError(NarrativesError):
    """A KB file is missing, malformed, or a listing file cannot be read."""


@dataclass(frozen=True)
class Entity:
    """One thing news can name: a company, fund, index, crypto asset, commodity or person."""

    id: str
    kind: str
    name: str
    ticker: str | None = None
    other_tickers: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    ambiguous: bool = False  # a name that is also an ordinary word: linked only with context
    role: str | None = None
    affiliation: str | None = None
    short_names: tuple[str, ...] = ()  # a surname that alone means this person in market news
    symbols: tuple[str, ...] = ()  # index symbols and crypto pairs as written: SPX, BTCUSD
    tracks: str | None = None
    exchange: str | None = None
    origin: str = "core"  # core | built | user | local

    @property
    def tickers(self) -> tuple[str, ...]:
        return ((self.ticker,) if self.ticker else ()) + self.other_tickers

    @property
    def surfaces(self) -> tuple[str, ...]:
        """Every written form that names the entity by itself (not short names, not symbols)."""
        return tuple(dict.fromkeys((self.name, *self.aliases)))

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        return {k: v for k, v in row.items() if v not in (None, (), [], False) or k == "id"}


def ticker_key(ticker: str) -> str:
    """One spelling for share-class tickers: BRK.B, BRK-B and BRK/B are the same listing."""
    return re.sub(r"[-/]", ".", ticker.strip().upper())


@dataclass
class KnowledgeBase:
    """Entities indexed by id, ticker and written form; later sources override earlier ones."""

    entities: dict[str, Entity] = field(default_factory=dict)
    stop_phrases: set[str] = field(default_factory=set)  # written forms that are never mentions
    _by_ticker: dict[str, str] = field(default_factory=dict)
    _by_symbol: dict[str, str] = field(default_factory=dict)

    def add(self, entity: Entity) -> None:
        """Add or replace an entity; a built listing never replaces a hand-written entry."""
        if entity.origin == "built":
            for key in [entity.id] + [
                self._by_ticker.get(ticker_key(t), "") for t in entity.tickers
            ]:
                held = self.entities.get(key)
                if held is not None and held.origin != "built":
                    return
        old = self.entities.get(entity.id)
        if old is not None:
            for t in old.tickers:
                self._by_ticker.pop(ticker_key(t), None)
        self.entities[entity.id] = entity
        for t in entity.tickers:
            self._by_ticker[ticker_key(t)] = entity.id
        for s in entity.symbols:
            self._by_symbol[s] = entity.id

    def extend(self, entities: Iterable[Entity]) -> None:
        for e in entities:
            self.add(e)

    def __len__(self) -> int:
        return len(self.entities)

    def __iter__(self) -> Iterator[Entity]:
        return iter(self.entities.values())

    def get(self, entity_id: str) -> Entity | None:
        return self.entities.get(entity_id)

    def by_ticker(self, ticker: str) -> Entity | None:
        entity_id = self._by_ticker.get(ticker_key(ticker))
        return self.entities[entity_id] if entity_id else None

    def by_symbol(self, symbol: str) -> Entity | None:
        entity_id = self._by_symbol.get(symbol)
        return self.entities[entity_id] if entity_id else None

    def symbols(self) -> dict[str, str]:
        return dict(self._by_symbol)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for entity_id in sorted(self.entities):
            digest.update(json.dumps(self.entities[entity_id].as_dict(), sort_keys=True).encode())
        digest.update(json.dumps(sorted(self.stop_phrases)).encode())
        return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Reading KB files


def core_kb_path() -> Path:
    return Path(str(resources.files("narratives") / "data" / "kb_core.toml"))


def load_kb(
    extra: Iterable[str | Path] = (), *, built: str | Path | None = DEFAULT_BUILT_KB
) -> KnowledgeBase:
    """The core KB, then the built KB when it exists, then each extra file (TOML or JSONL)."""
    kb = KnowledgeBase()
    core = read_kb_toml(core_kb_path(), origin="core")
    kb.extend(core.entities)
    kb.stop_phrases.update(core.stop_phrases)
    if built is not None and Path(built).exists():
        kb.extend(read_kb_jsonl(Path(built)))
    for path in extra:
        path = Path(path)
        if not path.exists():
            raise KnowledgeBaseError(f"no KB file at {path}")
        if path.suffix == ".jsonl":
            kb.extend(read_kb_jsonl(path, origin="user"))
        else:
            user = read_kb_toml(path, origin="user")
            kb.extend(user.entities)
            kb.stop_phrases.update(user.stop_phrases)
    return kb


@dataclass(frozen=True)
class KbFile:
    """What a KB TOML file holds: its entities and its top-level `stop_phrases` (phrases that
    contain a name but mention nothing, such as "gold standard")."""

    entities: list[Entity]
    stop_phrases: list[str]


def read_kb_toml(path: Path, *, origin: str = "user") -> KbFile:
    document = read_toml(path, what="KB file", error=KnowledgeBaseError)
    tables = document.get("entity")
    if not isinstance(tables, list):
        raise KnowledgeBaseError(
            f"{path} has no [[entity]] tables: each entry needs id, kind and name "
            "(see the comments at the top of the shipped kb_core.toml)"
        )
    entities = [
        entity_from_dict(t, where=f"{path}, entity {n}", origin=origin)
        for n, t in enumerate(tables, start=1)
    ]
    _check_unique(entities, path)
    phrases = document.get("stop_phrases", [])
    if not isinstance(phrases, list) or not all(isinstance(p, str) and p for p in phrases):
        raise KnowledgeBaseError(f"{path}: stop_phrases must be a list of non-empty strings")
    return KbFile(entities, phrases)


def read_kb_jsonl(path: Path, *, origin: str = "built") -> list[Entity]:
    entities = []
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KnowledgeBaseError(f"{path}, line {n}: not JSON ({exc})") from exc
            entities.append(
                entity_from_dict(row, where=f"{path}, line {n}", origin=row.get("origin", origin))
            )
    return entities


def entity_from_dict(row: object, *, where: str, origin: str) -> Entity:
    if not isinstance(row, dict):
        raise KnowledgeBaseError(f"{where}: expected a table of fields")
    unknown = set(row) - _KEYS - {"origin"}
    if unknown:
        raise KnowledgeBaseError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known fields are {', '.join(sorted(_KEYS))}"
        )
    for key in ("id", "kind", "name"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            raise KnowledgeBaseError(f"{where}: `{key}` is required and must be a string")
    label = f"{where} ({row['id']})"
    if not _ID.match(row["id"]):
        raise KnowledgeBaseError(
            f"{label}: id must look like kind:KEY, e.g. stock:AAPL or person:jerome-powell"
        )
    if row["kind"] not in KINDS:
        raise KnowledgeBaseError(f"{label}: kind must be one of {', '.join(KINDS)}")

    def strings(key: str) -> tuple[str, ...]:
        value = row.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise KnowledgeBaseError(f"{label}: `{key}` must be a list of non-empty strings")
        return tuple(value)

    def text(key: str) -> str | None:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise KnowledgeBaseError(f"{label}: `{key}` must be a string")
        return value or None

    ambiguous = row.get("ambiguous", False)
    if not isinstance(ambiguous, bool):
        raise KnowledgeBaseError(f"{label}: `ambiguous` must be true or false")
    return Entity(
        id=row["id"],
        kind=row["kind"],
        name=row["name"].strip(),
        ticker=text("ticker"),
        other_tickers=strings("other_tickers"),
        aliases=strings("aliases"),
        ambiguous=ambiguous,
        role=text("role"),
        affiliation=text("affiliation"),
        short_names=strings("short_names"),
        symbols=strings("symbols"),
        tracks=text("tracks"),
        exchange=text("exchange"),
        origin=origin,
    )


def _check_unique(entities: list[Entity], path: Path) -> None:
    seen: dict[str, str] = {}
    for e in entities:
        if e.id in seen:
            raise KnowledgeBaseError(f"{path}: id {e.id} is defined twice")
        seen[e.id] = e.id


# ---------------------------------------------------------------------------------------------
# Building a KB from listing files (SEC company tickers, exchange listings, index constituents)

# Descriptions of the security rather than of the company, cut from exchange listing names.
_SECURITY = re.compile(
    r"\s+(?:-\s+)?(?:Class [A-Z]\s+)?(?:Common Stock|Common Shares|Ordinary Shares|"
    r"American Depositary Shares|American Depository Shares|Depositary Shares|ADS|Units?|"
    r"Warrants?|Rights?|Subordinate Voting Shares|Capital Stock|Shares of Beneficial Interest|"
    r"Shares)\b.*$"
)
_LEGAL = re.compile(
    r",?\s+(?:&\s+Co\.?|Inc\.?|Incorporated|Corporation|Corp\.?|Co\.?|Company|Ltd\.?|Limited|plc|PLC|"
    r"N\.V\.?|S\.A\.?|SE|AG|L\.P\.?|LP|LLC|L\.L\.C\.|Trust|Holdings? Corp\.?|Bancorp\.?)$"
)
_DESCRIPTOR = re.compile(
    r"\s+(?:Holdings?|Group|Global|Technologies|Technology|International|Enterprises|"
    r"Worldwide|Industries|Motor|Systems|Platforms|Brands|Communications|Therapeutics)$"
)
# What is left after cutting descriptors must not be an ordinary word on its own.
_GENERIC = {
    "American", "Bank", "Capital", "Energy", "Financial", "First", "General", "Global",
    "Health", "Home", "International", "National", "New", "Royal", "Southern", "The",
    "United", "Western", "Eastern", "Northern", "Pacific", "Atlantic", "Life", "Medical",
    "Digital", "Data", "Real", "Power", "Gold", "Silver", "Oil", "Gas", "Federal", "Great",
    "Universal", "Standard", "Public", "Central", "Community", "Park", "Target", "Best",
    "Trade", "Core", "Blue", "Green", "Red", "Apex", "Alpha", "Bio", "Net", "Smart", "Pure",
    "Clear", "Open", "Prime", "Summit", "Liberty", "Freedom", "Pioneer", "Frontier", "Heritage",
}  # fmt: skip
_PREFERRED = re.compile(r"(?:\.P[A-Z]?|\.(?:W|WS|U|R|RT)|\$.*)$")
_SMALL_WORDS = {"of", "and", "the", "for", "de", "y", "a", "an", "on", "in", "at", "&"}


def clean_company_name(raw: str) -> str:
    """Listing text to a name as written: no share class, "(The)" moved, spacing tidied."""
    name = raw.replace("\u00a0", " ").strip()
    name = _SECURITY.sub("", name).strip(" -,")
    the = re.search(r"\s*\(The\)\s*", name, re.IGNORECASE)
    if the:
        name = (name[: the.start()] + name[the.end() :]).strip()
    name = re.sub(r"\s+", " ", name)
    if name.isupper() and len(name) > 5:
        name = _title_case(name)
    return name


def _title_case(upper: str) -> str:
    """SEC names are capitals ("NVIDIA CORP"); news writes them in title case."""
    words = []
    for n, word in enumerate(upper.split(" ")):
        lower = word.lower()
        if n and lower in _SMALL_WORDS:
            words.append(lower)
        elif len(word) <= 3 and not re.search(r"[AEIOUY]", word):
            words.append(word)  # initials and acronyms: IBM, CVS, PNC
        else:
            words.append("-".join(p[:1] + p[1:].lower() for p in word.split("-")))
    return " ".join(words)


def derive_aliases(name: str) -> list[str]:
    """Usable written forms of a company name, longest first.

    "Coinbase Global, Inc." → ["Coinbase Global, Inc.", "Coinbase Global", "Coinbase"]. Only
    legal suffixes and corporate descriptors are cut, and never down to a generic word.
    """
    forms = [name]
    current = name
    while True:
        shorter = _LEGAL.sub("", current).strip(" ,")
        if shorter == current or not shorter:
            break
        forms.append(shorter)
        current = shorter
    if current.startswith("The ") and len(current) > 8:
        current = current[4:]
        forms.append(current)
    while True:
        shorter = _DESCRIPTOR.sub("", current).strip(" ,")
        if shorter == current or not shorter or shorter in _GENERIC:
            break
        if " " not in shorter and (len(shorter) < 3 or shorter.lower() in _SMALL_WORDS):
            break
        forms.append(shorter)
        current = shorter
    return list(dict.fromkeys(f for f in forms if len(f) >= 2))


@dataclass
class Listing:
    ticker: str
    name: str
    exchange: str | None = None
    group: str | None = None  # the SEC CIK: share classes of one company share it
    is_fund: bool = False


def read_listings(data: bytes, *, source: str) -> list[Listing]:
    """Listings from one file's bytes; the format is recognised from its content."""
    text = data.decode("utf-8-sig", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KnowledgeBaseError(f"{source}: not valid JSON ({exc})") from exc
        return _listings_from_json(document, source)
    return _listings_from_csv(text, source)


def _listings_from_json(document: object, source: str) -> list[Listing]:
    if isinstance(document, dict) and "fields" in document and "data" in document:
        fields = [f.lower() for f in document["fields"]]  # SEC company_tickers_exchange.json
        rows = [dict(zip(fields, row, strict=False)) for row in document["data"]]
        return [
            Listing(str(r["ticker"]), str(r["name"]), r.get("exchange"), str(r.get("cik")))
            for r in rows
            if r.get("ticker") and r.get("name")
        ]
    if isinstance(document, dict) and all(isinstance(v, dict) for v in document.values()):
        return [  # SEC company_tickers.json: {"0": {"cik_str", "ticker", "title"}}
            Listing(str(v["ticker"]), str(v["title"]), None, str(v.get("cik_str")))
            for v in document.values()
            if v.get("ticker") and v.get("title")
        ]
    if isinstance(document, list) and document and isinstance(document[0], dict):
        out = []
        for row in document:  # exchange screener files: [{"symbol", "name", ...}]
            symbol, name = row.get("symbol") or row.get("ticker"), row.get("name")
            if symbol and name:
                out.append(Listing(str(symbol).strip(), str(name), row.get("exchange")))
        return out
    raise KnowledgeBaseError(
        f"{source}: unrecognised JSON; expected SEC company_tickers(.json|_exchange.json) "
        "or a list of {symbol, name} objects"
    )


def _listings_from_csv(text: str, source: str) -> list[Listing]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.lower().strip(): c for c in reader.fieldnames or []}
    ticker_col = next(
        (columns[c] for c in ("symbol", "ticker", "act symbol") if c in columns), None
    )
    name_col = next(
        (columns[c] for c in ("company name", "security", "name", "security name") if c in columns),
        None,
    )
    if not ticker_col or not name_col:
        raise KnowledgeBaseError(
            f"{source}: a CSV listing needs a Symbol/Ticker column and a name column "
            "(Company Name, Security or Name)"
        )
    etf_col = columns.get("etf")
    test_col = columns.get("test issue")
    out = []
    for row in reader:
        ticker, name = (row.get(ticker_col) or "").strip(), (row.get(name_col) or "").strip()
        if not ticker or not name or (test_col and row.get(test_col) == "Y"):
            continue
        out.append(Listing(ticker, name, is_fund=bool(etf_col and row.get(etf_col) == "Y")))
    return out


def build_kb(listings: Iterable[Listing]) -> list[Entity]:
    """One entity per company (share classes grouped by CIK), with aliases from its names.

    Mixed-case names from exchange files win over the SEC's capitals for the same ticker.
    """
    by_ticker: dict[str, Listing] = {}
    names: dict[str, list[str]] = {}
    for listing in listings:
        ticker = listing.ticker.strip().upper()
        if not re.fullmatch(r"[A-Z][A-Z0-9.\-/]{0,9}", ticker):
            continue
        key = ticker_key(ticker)
        name = clean_company_name(listing.name)
        if not name:
            continue
        names.setdefault(key, []).append(name)
        held = by_ticker.get(key)
        if held is None:
            by_ticker[key] = Listing(ticker, name, listing.exchange, listing.group, listing.is_fund)
        else:
            held.group = held.group or listing.group
            held.exchange = held.exchange or listing.exchange
            held.is_fund = held.is_fund or listing.is_fund
    groups: dict[str, list[str]] = {}
    for key, listing in by_ticker.items():
        if _PREFERRED.search(key):
            continue  # preferreds, warrants, units and rights are not what news names
        groups.setdefault(listing.group or key, []).append(key)
    entities = []
    for keys in groups.values():
        first = by_ticker[keys[0]]
        # Share classes keep the company's letters (GOOG/GOOGL, BRK.A/BRK.B); other tickers
        # under one filer are notes and funds it issues, which the news does not mean by its name.
        keys = [keys[0]] + [k for k in keys[1:] if k[:2] == keys[0][:2]]
        candidates = [n for k in keys for n in names[k]]
        name = min(candidates, key=lambda n: (n.isupper(), _upper_share(n), len(n)))
        aliases: list[str] = []
        for candidate in sorted(set(candidates), key=len, reverse=True):
            aliases.extend(derive_aliases(candidate))
        shortest = min(derive_aliases(name), key=len)
        entities.append(
            Entity(
                id=("etf:" if first.is_fund else "stock:") + ticker_key(first.ticker),
                kind="fund" if first.is_fund else "company",
                name=shortest if len(shortest) > 3 or " " in name else name,
                ticker=first.ticker,
                other_tickers=tuple(by_ticker[k].ticker for k in keys[1:]),
                aliases=tuple(a for a in dict.fromkeys(aliases) if not a.isupper() or len(a) > 5),
                exchange=first.exchange,
                origin="built",
            )
        )
    return entities


def _upper_share(name: str) -> float:
    letters = [c for c in name if c.isalpha()]
    return sum(c.isupper() for c in letters) / max(1, len(letters))


def write_kb_jsonl(entities: Iterable[Entity], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as out:
        for e in entities:
            out.write(json.dumps(e.as_dict(), ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)  # a reader never sees half a KB
    return n


@dataclass
class KbBuildSummary:
    sources: dict[str, int]  # source → listings read
    entities: int
    path: Path


def build_kb_from(
    sources: Iterable[str], out: Path = DEFAULT_BUILT_KB, *, policy: object | None = None
) -> KbBuildSummary:
    """`narratives kb build`: read listing files or URLs, derive aliases, write a JSONL KB.

    Formats are recognised from the content: SEC company_tickers.json and
    company_tickers_exchange.json, exchange screener JSON ([{symbol, name}]), and CSV listings
    with a Symbol/Ticker column and a name column (Nasdaq listed files, index constituents).
    """
    from narratives.fetch import Fetcher, FetchPolicy

    listings: list[Listing] = []
    counts: dict[str, int] = {}
    fetcher: Fetcher | None = None
    try:
        for source in sources:
            if re.match(r"^https?://", source):
                if fetcher is None:
                    fetcher = Fetcher(policy if isinstance(policy, FetchPolicy) else None)
                data = fetcher.get(source, accept="application/json, text/csv, */*").body
            else:
                path = Path(source)
                if not path.is_file():
                    raise KnowledgeBaseError(f"no listing file at {source}")
                data = path.read_bytes()
            found = read_listings(data, source=source)
            if not found:
                raise KnowledgeBaseError(f"{source}: no listings found")
            counts[source] = len(found)
            listings.extend(found)
    finally:
        if fetcher is not None:
            fetcher.close()
    if not listings:
        raise KnowledgeBaseError("nothing to build from: give one or more --from FILE|URL")
    n = write_kb_jsonl(build_kb(listings), out)
    return KbBuildSummary(sources=counts, entities=n, path=out)
