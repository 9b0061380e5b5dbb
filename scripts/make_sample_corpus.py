"""Generate the fictional sample corpus in corpus/sample/ that `make demo` runs on."""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import itertools
import json
import math
import random
import re
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "corpus" / "sample"
DEFAULT_TEMPLATES = Path(__file__).with_name("sample_templates.toml")
DEFAULT_SEED = 2024
YEAR = 2024
FIRST_NEWS_DAY = date(YEAR, 1, 2)

THEMES = ("rate_cut_trade", "trump_trade", "short_squeeze", "dash_for_trash")

# How loud each narrative is over the year: (MM-DD, intensity 0..1), linearly interpolated.
# An article carries a theme with probability MAX_SHARE * intensity on its date.
# fmt: off
CURVES: dict[str, list[tuple[str, float]]] = {
    # Builds Jan–Mar on pivot hopes, fades in April's hot-CPI scare, surges after the soft
    # June CPI (Jul 11) into the September cut, cools with October's strong jobs data.
    "rate_cut_trade": [
        ("01-02", 0.40), ("02-01", 0.50), ("03-01", 0.60), ("03-20", 0.70), ("04-10", 0.25),
        ("04-30", 0.15), ("05-15", 0.35), ("06-12", 0.40), ("07-05", 0.40), ("07-11", 0.90),
        ("07-31", 0.85), ("08-05", 0.80), ("09-18", 0.95), ("10-04", 0.40), ("10-31", 0.30),
        ("11-07", 0.40), ("12-18", 0.45), ("12-31", 0.25),
    ],
    # Quiet through the primaries, stirs after the June 27 debate, jumps after the Jul 13
    # assassination attempt, unwinds when Biden withdraws, returns in October, explodes on Nov 5.
    "trump_trade": [
        ("01-02", 0.05), ("03-05", 0.10), ("03-26", 0.15), ("06-20", 0.10), ("06-27", 0.20),
        ("07-12", 0.40), ("07-15", 0.80), ("07-21", 0.55), ("08-15", 0.25), ("09-10", 0.25),
        ("10-10", 0.45), ("10-31", 0.60), ("11-04", 0.70), ("11-06", 1.00), ("11-20", 0.85),
        ("12-31", 0.65),
    ],
    # Background hum, a meme revival spike in mid-May, a shorter one in early June, small-cap
    # short covering in mid-July and a little after the election.
    "short_squeeze": [
        ("01-02", 0.08), ("05-10", 0.08), ("05-13", 0.90), ("05-15", 0.95), ("05-20", 0.35),
        ("05-31", 0.25), ("06-03", 0.70), ("06-07", 0.75), ("06-14", 0.20), ("07-05", 0.10),
        ("07-12", 0.40), ("07-22", 0.20), ("08-15", 0.08), ("11-08", 0.20), ("12-31", 0.10),
    ],
    # Carries over from the Dec-2023 junk rally, flares with the May memes, mid-July with
    # small caps, dies in the August carry-trade scare, then runs hot after the election.
    "dash_for_trash": [
        ("01-02", 0.30), ("02-01", 0.15), ("03-08", 0.25), ("04-15", 0.10), ("05-14", 0.45),
        ("05-31", 0.20), ("06-06", 0.35), ("06-20", 0.12), ("07-11", 0.30), ("07-17", 0.65),
        ("07-31", 0.25), ("08-05", 0.05), ("09-20", 0.15), ("10-31", 0.15), ("11-06", 0.40),
        ("11-12", 0.75), ("12-05", 0.80), ("12-18", 0.55), ("12-31", 0.50),
    ],
}
# fmt: on
MAX_SHARE = 0.8
# Extra coverage a day gets per unit of squared intensity above a theme's median.
NEWS_SURGE = 3.0
MAX_THEMES_PER_ARTICLE = 3
MIN_WORDS, MAX_WORDS = 150, 450
MIN_PARAGRAPHS = 4

# Synthetic prices follow the curves this many calendar days late.
PRICE_LAG_DAYS = 2


@dataclass(frozen=True)
class PriceModel:
    """One synthetic ticker: log return = beta * market + drift + trend + level change + noise."""

    start: float
    beta: float  # to the common market factor
    vol: float  # daily idiosyncratic volatility
    drift: float  # daily
    # Extra daily drift per unit of lagged intensity above the curve's median (its quiet level):
    # loud spells push the price along, quiet ones don't drag it.
    trend: dict[str, float] = field(default_factory=dict)
    # Log price moves by this much per unit of lagged intensity: the price rises while the
    # narrative is loud and gives the move back as it fades (squeezes, election bets).
    level: dict[str, float] = field(default_factory=dict)
    # Extra daily volatility per unit of lagged intensity.
    vol_up: dict[str, float] = field(default_factory=dict)


PRICE_MODEL: dict[str, PriceModel] = {
    "SPY": PriceModel(472.65, 1.00, 0.003, 0.0000),
    "IWM": PriceModel(
        199.10, 1.15, 0.006, -0.0008, trend={"rate_cut_trade": 0.004, "trump_trade": 0.003}
    ),
    "QQQ": PriceModel(402.50, 1.25, 0.004, 0.0002),
    "ARKK": PriceModel(51.05, 1.60, 0.012, -0.0018, trend={"dash_for_trash": 0.008}),
    "GLD": PriceModel(190.40, 0.10, 0.007, 0.0006, trend={"rate_cut_trade": 0.002}),
    "TLT": PriceModel(
        98.20, -0.25, 0.008, -0.0002, trend={"rate_cut_trade": 0.003, "trump_trade": -0.003}
    ),
    "GME": PriceModel(
        17.45, 1.00, 0.028, -0.0010, level={"short_squeeze": 1.2}, vol_up={"short_squeeze": 0.04}
    ),
    "DJT": PriceModel(17.20, 0.80, 0.035, -0.0008, level={"trump_trade": 0.9}),
    "BTC-USD": PriceModel(
        44180.0, 0.40, 0.025, -0.0012, trend={"dash_for_trash": 0.006, "trump_trade": 0.003}
    ),
}
MARKET_DRIFT, MARKET_VOL = -0.0002, 0.008
GOLD_PER_GLD, SPX_PER_SPY, RUT_PER_IWM = 10.86, 10.04, 10.07

# fmt: off
NYSE_HOLIDAYS = frozenset(date.fromisoformat(d) for d in (
    "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19",
    "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25",
))
FOMC_DECISIONS = [date.fromisoformat(d) for d in (
    "2024-01-31", "2024-03-20", "2024-05-01", "2024-06-12", "2024-07-31", "2024-09-18",
    "2024-11-07", "2024-12-18", "2025-01-29",
)]
FED_FUNDS_RANGES = [
    (date(2024, 1, 1), "5.25%-5.50%"), (date(2024, 9, 18), "4.75%-5.00%"),
    (date(2024, 11, 7), "4.50%-4.75%"), (date(2024, 12, 18), "4.25%-4.50%"),
]
# What markets priced for cuts (this year, or next year late in the year), month by month.
PRICED_CUTS = {
    1: ("five", "six"), 2: ("four", "five"), 3: ("three",), 4: ("one or two", "two"),
    5: ("one or two", "two"), 6: ("one or two", "two"), 7: ("two", "three"),
    8: ("four", "five"), 9: ("two", "three"), 10: ("two",), 11: ("one or two", "two"),
    12: ("two", "three"),
}
# fmt: on
DST_START, DST_END = datetime(2024, 3, 10, 7, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Publisher:
    key: str
    name: str
    domain: str
    volume: int
    pieces: tuple[int, int]  # how many templates a story is built from
    max_paragraphs: int
    merge_share: float  # chance that a piece is run into the previous paragraph
    headline_case: str  # "title" or "sentence"
    kickers: tuple[str, ...]  # headline prefixes, "" for none
    ticker_style: str  # paren, marketwatch, exchange, cashtag, none, ric
    quote_style: str  # said, varied, colon, according, says
    curly: bool
    percent: str
    authors: tuple[str, ...]
    hours: tuple[tuple[float, float, float], ...]  # (from, to, weight) in ET
    weekend_weight: float
    utc_share: float  # share of timestamps written in UTC with a Z


PUBLISHERS = (
    Publisher(
        key="tickertape",
        name="The Ticker Tape",
        domain="tickertape.example",
        volume=70,
        pieces=(5, 8),
        max_paragraphs=7,
        merge_share=0.10,
        headline_case="title",
        kickers=("",),
        ticker_style="paren",
        quote_style="said",
        curly=True,
        percent="%",
        authors=("Nora Castellanos", "Jamie Okafor-Reyes", "Priyanka Dutt", "Ticker Tape Staff"),
        hours=((16.1, 18.6, 0.6), (9.6, 15.9, 0.3), (19.0, 22.5, 0.1)),
        weekend_weight=0.10,
        utc_share=0.0,
    ),
    Publisher(
        key="harborstreet",
        name="Harbor Street Journal",
        domain="harborstreet.example",
        volume=50,
        pieces=(8, 11),
        max_paragraphs=8,
        merge_share=0.25,
        headline_case="sentence",
        kickers=("",),
        ticker_style="marketwatch",
        quote_style="varied",
        curly=True,
        percent="%",
        authors=("Elliot Marchbanks", "Sofia Brandt", "Marcus Adeyemi-Cole"),
        hours=((6.0, 9.5, 0.3), (9.5, 16.0, 0.4), (16.0, 20.5, 0.3)),
        weekend_weight=0.15,
        utc_share=0.25,
    ),
    Publisher(
        key="marketline",
        name="Marketline Daily",
        domain="marketline.example",
        volume=40,
        pieces=(6, 9),
        max_paragraphs=8,
        merge_share=0.20,
        headline_case="sentence",
        kickers=("",),
        ticker_style="exchange",
        quote_style="colon",
        curly=False,
        percent="%",
        authors=("Rachel Thorne", "Devon Ashby"),
        hours=((6.5, 9.3, 0.6), (16.5, 19.0, 0.4)),
        weekend_weight=0.05,
        utc_share=0.0,
    ),
    Publisher(
        key="boursewire",
        name="Bourse Wire",
        domain="boursewire.example",
        volume=28,
        pieces=(4, 6),
        max_paragraphs=6,
        merge_share=0.0,
        headline_case="title",
        kickers=("",),
        ticker_style="cashtag",
        quote_style="according",
        curly=False,
        percent="%",
        authors=("Bourse Wire Staff", "Tomas Varga"),
        hours=((4.0, 23.5, 1.0),),
        weekend_weight=0.25,
        utc_share=1.0,
    ),
    Publisher(
        key="coastalcapital",
        name="Coastal Capital Review",
        domain="coastalcapital.example",
        volume=14,
        pieces=(11, 14),
        max_paragraphs=8,
        merge_share=0.45,
        headline_case="sentence",
        kickers=("", "Analysis: "),
        ticker_style="none",
        quote_style="says",
        curly=True,
        percent=" percent",
        authors=("Helen Iwasaki",),
        hours=((7.0, 12.0, 1.0),),
        weekend_weight=3.0,
        utc_share=0.0,
    ),
    Publisher(
        key="lanternledger",
        name="Lantern Ledger",
        domain="lanternledger.example",
        volume=12,
        pieces=(7, 10),
        max_paragraphs=8,
        merge_share=0.20,
        headline_case="sentence",
        kickers=("", "", "MARKETS-"),
        ticker_style="ric",
        quote_style="said",
        curly=False,
        percent=" percent",
        authors=("Owen Pryce", "Amara Quist"),
        hours=((8.0, 18.0, 1.0),),
        weekend_weight=0.05,
        utc_share=0.5,
    ),
)
PUBLISHER_BY_KEY = {p.key: p for p in PUBLISHERS}

# Articles rendered as full HTML pages instead of going into articles.jsonl.
PAGE_PLANS = (
    ("tickertape", date(2024, 5, 14), ("short_squeeze", "dash_for_trash"), "utf-8"),
    ("tickertape", date(2024, 7, 16), ("rate_cut_trade", "trump_trade"), "utf-8"),
    ("tickertape", date(2024, 11, 12), ("trump_trade", "dash_for_trash"), "utf-8"),
    ("harborstreet", date(2024, 3, 8), ("rate_cut_trade",), "utf-8"),
    ("harborstreet", date(2024, 9, 19), ("rate_cut_trade",), "utf-8"),
    ("harborstreet", date(2024, 12, 4), ("dash_for_trash",), "windows-1252"),
)
# Bourse Wire items that exist only as feed summaries.
FEED_ONLY_DATES = (date(2024, 12, 10), date(2024, 12, 19))
RSS_ITEMS, ATOM_LINKED_ITEMS = 10, 4
# Publishers whose longer pieces break the text with a short subhead paragraph.
SUBHEAD_PUBLISHERS = ("harborstreet", "coastalcapital")


# --------------------------------------------------------------------------------------------
# Records


@dataclass
class Article:
    id: str
    source: str
    publisher: str
    published: str
    title: str
    author: str
    text: str
    url: str


@dataclass
class LabelledParagraph:
    pid: str
    article_id: str
    published: str
    text: str
    labels: list[str]


@dataclass
class PriceRow:
    date: str
    ticker: str
    close: str


@dataclass(frozen=True)
class Template:
    key: str
    labels: tuple[str, ...]
    text: str = ""
    say: str = ""
    tail: str = ""
    after: date | None = None
    before: date | None = None
    headline: str = ""
    months: tuple[int, ...] = ()

    @property
    def is_quote(self) -> bool:
        return bool(self.say)

    def usable_on(self, day: date) -> bool:
        return (
            (self.after is None or day >= self.after)
            and (self.before is None or day < self.before)
            and (not self.months or day.month in self.months)
        )


@dataclass(frozen=True)
class Analyst:
    name: str
    pronoun: str
    role: str
    firm: str

    @property
    def surname(self) -> str:
        return self.name.split()[-1]


@dataclass(frozen=True)
class Security:
    key: str
    name: str
    short: str
    kind: str
    symbol: str
    exchange: str = ""


@dataclass
class Library:
    pools: dict[str, list[Template]]
    topics: dict[str, str]  # hard-negative topic -> the theme it tempts ("" for none)
    headlines: dict[str, list[Template]]
    analysts: list[Analyst]
    firms: list[str]
    data_firms: list[str]
    short_sellers: list[str]
    swing_states: list[str]
    sectors: list[str]
    subheads: list[str]
    securities: dict[str, Security]
    companies: dict[str, list[Security]]
    page_parts: dict[str, str]  # HTML page templates and the README, filled with str.format

    def pool(self, name: str, day: date, used: set[str] | None = None) -> list[Template]:
        used = used or set()
        return [t for t in self.pools.get(name, []) if t.usable_on(day) and t.key not in used]


@dataclass
class Plan:
    publisher: Publisher
    published: datetime  # aware, in ET
    themes: tuple[str, ...]
    topic: str | None
    zulu: bool


@dataclass
class Generated:
    article: Article
    paragraphs: list[tuple[str, tuple[str, ...]]]
    plan: Plan
    subhead_at: int | None = None


# --------------------------------------------------------------------------------------------
# Calendar and curves


def eastern(moment: datetime) -> timezone:
    """US Eastern offset for 2024 (DST from Mar 10 to Nov 3), without needing tzdata."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return timezone(timedelta(hours=-4 if DST_START <= utc < DST_END else -5))


def et_datetime(day: date, hours: float) -> datetime:
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=round(hours * 60))
    offset = timezone(timedelta(hours=-5))
    guess = naive.replace(tzinfo=offset)
    return naive.replace(tzinfo=eastern(guess))


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in NYSE_HOLIDAYS


def previous_trading_day(day: date) -> date:
    day -= timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def session_of(moment: datetime) -> date:
    """The trading session an article written at `moment` reports on."""
    day = moment.date()
    if is_trading_day(day) and moment.hour + moment.minute / 60 >= 9.5:
        return day
    return previous_trading_day(day)


def year_days() -> list[date]:
    start = date(YEAR, 1, 1)
    return [start + timedelta(days=i) for i in range((date(YEAR + 1, 1, 1) - start).days)]


def news_days() -> list[date]:
    """The days articles may be dated: the first trading day of the year to its last day."""
    return [d for d in year_days() if d >= FIRST_NEWS_DAY]


def intensity(theme: str, day: date) -> float:
    knots = [(date.fromisoformat(f"{YEAR}-{md}"), value) for md, value in CURVES[theme]]
    if day <= knots[0][0]:
        return knots[0][1]
    for (d0, v0), (d1, v1) in itertools.pairwise(knots):
        if d0 <= day <= d1:
            return v0 + (v1 - v0) * (day - d0).days / (d1 - d0).days
    return knots[-1][1]


def iso_published(moment: datetime, zulu: bool) -> str:
    if zulu:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# Templates


def _parse_day(raw: str | None) -> date | None:
    return date.fromisoformat(raw) if raw else None


def _templates(key: str, entries: list, labels: tuple[str, ...]) -> list[Template]:
    out = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"text": entry}
        out.append(
            Template(
                key=f"{key}.{i}",
                labels=labels,
                text=entry.get("text", ""),
                say=entry.get("say", ""),
                tail=entry.get("tail", ""),
                after=_parse_day(entry.get("after")),
                before=_parse_day(entry.get("before")),
                headline=entry.get("headline", ""),
                months=tuple(entry.get("months", ())),
            )
        )
    return out


def load_library(path: Path) -> Library:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    pools: dict[str, list[Template]] = {}
    for theme, parts in raw["pos"].items():
        for part, entries in parts.items():
            pools[f"pos.{theme}.{part}"] = _templates(f"pos.{theme}.{part}", entries, (theme,))
    for pair, parts in raw["overlap"].items():
        labels = tuple(pair.split("+"))
        for part, entries in parts.items():
            pools[f"overlap.{pair}.{part}"] = _templates(f"overlap.{pair}.{part}", entries, labels)
    topics = {}
    for topic, parts in raw["no"].items():
        topics[topic] = parts["tempts"]
        for part in ("lede", "body", "quotes", "aside"):
            entries = parts.get(part, [])
            pools[f"no.{topic}.{part}"] = _templates(f"no.{topic}.{part}", entries, ())
    for part in ("colour", "quotes", "close"):
        pools[f"neutral.{part}"] = _templates(f"neutral.{part}", raw["neutral"][part], ())
    headlines = {}
    for group, table in raw["headlines"].items():
        for name, entries in table.items():
            headlines[f"{group}.{name}"] = _templates(f"headline.{group}.{name}", entries, ())
    cast = raw["cast"]
    analysts = [Analyst(*line.split("|")) for line in cast["analysts"]]
    securities = {
        key: Security(key=key, exchange=spec.get("exchange", ""), **_security_fields(spec))
        for key, spec in raw["securities"].items()
    }
    companies: dict[str, list[Security]] = {}
    for spec in raw["company"]:
        companies.setdefault(spec["sector"], []).append(
            Security(
                key=spec["symbol"],
                name=spec["name"],
                short=spec["short"],
                kind="stock",
                symbol=spec["symbol"],
                exchange=spec["exchange"],
            )
        )
    return Library(
        pools=pools,
        topics=topics,
        headlines=headlines,
        analysts=analysts,
        firms=cast["firms"],
        data_firms=cast["data_firms"],
        short_sellers=cast["short_sellers"],
        swing_states=cast["swing_states"],
        sectors=cast["sectors"],
        subheads=cast["subheads"],
        securities=securities,
        companies=companies,
        page_parts=raw["pages"],
    )


def _security_fields(spec: dict) -> dict:
    return {k: spec[k] for k in ("name", "short", "kind", "symbol")}


def pair_key(a: str, b: str, pools: dict[str, list[Template]], part: str) -> str | None:
    for first, second in ((a, b), (b, a)):
        if f"overlap.{first}+{second}.{part}" in pools:
            return f"overlap.{first}+{second}.{part}"
    return None


# --------------------------------------------------------------------------------------------
# Rendering one article in a publisher's house style

SLOT = re.compile(r"\{([A-Za-z_]+)(?::([A-Za-z0-9_-]+))?\}")
ALTERNATIVES = re.compile(r"\{([^{}]*\|[^{}]*)\}")
RIC_SUFFIX = {"NYSE": "N", "Nasdaq": "O", "NYSE Arca": "P"}
HARBOR_VERBS = (
    "said",
    "said in an interview",
    "wrote in a note to clients",
    "told Harbor Street Journal",
    "said by phone",
)
UP_VERBS = ("rose", "climbed", "rallied", "advanced", "jumped", "gained")
DOWN_VERBS = ("fell", "slid", "dropped", "declined", "slipped")
NUMBER_WORDS = ("three", "four", "five", "six", "seven", "eight")
# Facts an article states once and must repeat consistently (in its headline, say).
STABLE_SLOTS = frozenset({"cpi", "ncuts", "mort", "poll", "swing_state", "two_y", "ten_y", "odds"})


class Renderer:
    """Fills slots for one article; remembers first mentions of analysts and securities."""

    def __init__(
        self,
        lib: Library,
        pub: Publisher,
        moment: datetime,
        rng: random.Random,
        prices: dict[str, dict[date, float]],
    ) -> None:
        self.lib, self.pub, self.moment, self.rng, self.prices = lib, pub, moment, rng, prices
        self.day = moment.date()
        self.session = session_of(moment)
        self.cast = rng.sample(lib.analysts, 4)
        self.firms = rng.sample(lib.firms, 2)
        self.data_firm = rng.choice(lib.data_firms)
        self.short_seller = rng.choice(lib.short_sellers)
        sectors = {sector: rng.choice(options) for sector, options in lib.companies.items()}
        everyone = [c for options in lib.companies.values() for c in options]
        co, co2 = rng.sample(everyone, 2)
        self.companies = {**sectors, "co": co, "co2": co2}
        self.reset()

    def reset(self) -> None:
        self.next_analyst = 0
        self.last_analyst: Analyst | None = None
        self.introduced: set[str] = set()
        self.mentioned: set[str] = set()
        self.facts: dict[str, str] = {}

    # -- people
    def analyst_ref(self, analyst: Analyst, *, capital: bool = False) -> str:
        self.last_analyst = analyst
        if analyst.name in self.introduced:
            return analyst.surname
        self.introduced.add(analyst.name)
        style = self.pub.quote_style
        if style == "according":
            return f"{analyst.name} of {analyst.firm}"
        if style == "says":
            return f"{analyst.firm}'s {analyst.name}"
        preposition = "of" if analyst.role == "founder" else "at"
        return f"{analyst.name}, {analyst.role} {preposition} {analyst.firm},"

    def take_analyst(self) -> Analyst:
        analyst = self.cast[self.next_analyst % len(self.cast)]
        self.next_analyst += 1
        return analyst

    # -- securities
    def security(self, key: str) -> Security:
        if key in self.companies:
            return self.companies[key]
        return self.lib.securities[key]

    def ticker(self, key: str) -> str:
        sec = self.security(key)
        first = sec.key not in self.mentioned
        self.mentioned.add(sec.key)
        style = self.pub.ticker_style
        if style == "marketwatch":
            if sec.kind == "index":
                return f"{sec.name} {sec.symbol}"
            change = self.rng.uniform(-3.5, 4.5) if sec.kind != "etf" else self.rng.uniform(-2, 2)
            return f"{sec.name} {sec.symbol}, {change:+.2f}%"
        if not first:
            if style == "cashtag" and sec.kind == "stock":
                return f"${sec.symbol}"
            return sec.short
        if sec.kind == "index" or style == "none":
            return sec.name
        if sec.kind == "crypto":
            return f"{sec.name} ($BTC)" if style == "cashtag" else sec.name
        if style == "paren":
            return f"{sec.name} ({sec.symbol})"
        if style == "exchange":
            return f"{sec.name} ({sec.exchange}: {sec.symbol})"
        if style == "cashtag":
            return f"{sec.name} (${sec.symbol})"
        return f"{sec.name} ({sec.symbol}.{RIC_SUFFIX[sec.exchange]})"  # ric

    # -- numbers
    def pct(self, value: float, digits: int = 1) -> str:
        return f"{value:.{digits}f}{self.pub.percent}"

    def price(self, ticker: str, day: date) -> float:
        series = self.prices[ticker]
        day = max(day, min(series))
        while day not in series:
            day -= timedelta(days=1)
        return series[day]

    def number(self, name: str) -> str:
        r = self.rng
        simple = {
            "pct_s": lambda: self.pct(r.uniform(0.2, 1.9)),
            "pct_m": lambda: self.pct(r.uniform(2.0, 6.8)),
            "pct_l": lambda: self.pct(r.uniform(8.0, 38.0)),
            "pct_xl": lambda: self.pct(r.uniform(45.0, 140.0), 0),
            "pct_ytd": lambda: self.pct(r.uniform(4.0, 26.0)),
            "pp": lambda: f"{r.uniform(2.0, 14.0):.1f} percentage points",
            "odds": lambda: self.pct(r.randint(58, 97), 0),
            "si": lambda: self.pct(r.randint(18, 41), 0),
            "si_low": lambda: self.pct(r.uniform(1.8, 4.6)),
            "bps": lambda: str(r.randint(5, 24)),
            "two_y": lambda: self.pct(r.uniform(3.85, 4.95), 2),
            "ten_y": lambda: self.pct(r.uniform(3.65, 4.65), 2),
            "mort": lambda: self.pct(r.uniform(6.08, 7.22), 2),
            "cpi": lambda: self.pct(r.uniform(2.4, 3.5)),
            "cpi_m": lambda: self.pct(r.uniform(0.1, 0.4)),
            "bn": lambda: f"${r.uniform(1.1, 9.8):.1f} billion",
            "usd_m": lambda: f"${r.randrange(120, 980, 10)} million",
            "dtc": lambda: f"{r.randint(5, 12)} days",
            "poll": lambda: self.pct(r.randint(44, 48), 0),
            "vix": lambda: f"{r.uniform(11.8, 19.5):.1f}",
            "oil": lambda: f"{r.uniform(67.5, 86.0):.2f}",
            "vol": lambda: f"{r.uniform(9.5, 13.5):.1f}",
            "jobs": lambda: f"{r.randrange(140, 245, 5)},000",
            "k_sectors": lambda: r.choice(NUMBER_WORDS),
            "n_reports": lambda: str(r.randrange(40, 130, 5)),
            "ncuts": lambda: r.choice(PRICED_CUTS[self.day.month]),
            "up": lambda: r.choice(UP_VERBS),
            "down": lambda: r.choice(DOWN_VERBS),
            "sector": lambda: r.choice(self.lib.sectors),
            "swing_state": lambda: r.choice(self.lib.swing_states),
        }
        if name in STABLE_SLOTS:
            if name not in self.facts:
                self.facts[name] = simple[name]()
            return self.facts[name]
        if name in simple:
            return simple[name]()
        if name == "btc":
            return f"${self.price('BTC-USD', self.day):,.0f}"
        if name == "gold":
            return f"${self.price('GLD', self.session) * GOLD_PER_GLD:,.0f}"
        if name == "spx":
            return f"{self.price('SPY', self.session) * SPX_PER_SPY:,.2f}"
        if name == "rut":
            return f"{self.price('IWM', self.session) * RUT_PER_IWM:,.2f}"
        if name == "ffr":
            return [label for start, label in FED_FUNDS_RANGES if self.day >= start][-1]
        if name == "fomc":
            upcoming = next(d for d in FOMC_DECISIONS if d >= self.day)
            return upcoming.strftime("%B")
        if name == "weekday":
            return self.session.strftime("%A")
        if name == "month":
            return self.day.strftime("%B")
        raise KeyError(f"unknown slot {{{name}}} in sample_templates.toml")

    def slot(self, match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name == "T":
            return self.ticker(arg)
        if name == "N":
            sec = self.security(arg)
            self.mentioned.add(sec.key)
            return sec.short
        if name == "A":
            return self.analyst_ref(self.take_analyst())
        if name == "A_":
            return (self.last_analyst or self.cast[0]).surname
        if name in ("she", "She", "her"):
            pronoun = (self.last_analyst or self.cast[0]).pronoun
            word = {"she": pronoun, "her": "her" if pronoun == "she" else "his"}[name.lower()]
            return word.capitalize() if name[0].isupper() else word
        if name == "firm":
            return self.firms[0]
        if name == "data":
            return self.data_firm
        if name == "shortseller":
            return self.short_seller
        return self.number(name)

    def fill(self, text: str) -> str:
        text = ALTERNATIVES.sub(lambda m: self.rng.choice(m.group(1).split("|")), text)
        text = SLOT.sub(self.slot, text)
        return self.quotes(text)

    def quotes(self, text: str) -> str:
        if self.pub.curly:
            return text.replace("«", "“").replace("»", "”").replace("'", "’")
        return text.replace("«", '"').replace("»", '"')

    def paragraph(self, template: Template) -> str:
        if not template.is_quote:
            text = self.fill(template.text)
        else:
            say = self.fill(template.say)
            # `ref` keeps an appositive's closing comma ("Name, role at Firm,") for a verb after it.
            ref = self.analyst_ref(self.take_analyst())
            who = ref.rstrip(",")
            o, c = ("“", "”") if self.pub.curly else ('"', '"')
            style = self.pub.quote_style
            if style == "colon":
                text = f"{ref} said: {o}{say}.{c}"
            elif style == "varied":
                text = f"{o}{say},{c} {ref} {self.rng.choice(HARBOR_VERBS)}."
            elif style == "according":
                text = f"{o}{say},{c} according to {who}."
            elif style == "says":
                text = f"{o}{say},{c} says {who}."
            else:
                text = f"{o}{say},{c} said {who}."
            if template.tail:
                text = f"{text} {self.fill(template.tail)}"
        text = text.replace("Co..", "Co.").replace("Inc..", "Inc.")  # a name ending a sentence
        return text[0].upper() + text[1:]

    def headline(self, template: Template) -> str:
        text = self.fill(template.text)
        return text[0].upper() + text[1:]


# --------------------------------------------------------------------------------------------
# Composing articles from templates

SMALL_WORDS = {
    "a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on", "or",
    "over", "the", "to", "vs.", "with",
}  # fmt: skip


def title_case(text: str) -> str:
    words = text.split(" ")
    out = []
    for i, word in enumerate(words):
        after_colon = i > 0 and words[i - 1].endswith(":")
        if i and not after_colon and i < len(words) - 1 and word.lower() in SMALL_WORDS:
            out.append(word.lower())
        elif word[:1].isalpha():
            out.append("-".join(part[:1].upper() + part[1:] for part in word.split("-")))
        else:
            out.append(word)
    return " ".join(out)


def slugify(title: str) -> str:
    words = re.sub(r"[^a-z0-9]+", " ", title.lower().replace("'", "").replace("’", "")).split()
    slug = ""
    for word in words[:8]:
        if len(slug) + len(word) + 1 > 60:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug


def choose_themes(rng: random.Random, day: date) -> tuple[str, ...]:
    drawn = [t for t in THEMES if rng.random() < MAX_SHARE * intensity(t, day)]
    drawn.sort(key=lambda t: -intensity(t, day))
    return tuple(drawn[:MAX_THEMES_PER_ARTICLE])


def choose_topic(rng: random.Random, lib: Library, day: date) -> str:
    topics, weights = [], []
    for topic, tempts in lib.topics.items():
        if not lib.pool(f"no.{topic}.lede", day):
            continue
        if not headline_options(lib, f"no.{topic}", day):
            continue
        topics.append(topic)
        weights.append(1.5 if not tempts else 0.6 + 2.0 * intensity(tempts, day))
    return rng.choices(topics, weights)[0]


class Composer:
    """Picks the templates of one article: which paragraphs, in what order, with what labels."""

    def __init__(self, lib: Library, rng: random.Random, plan: Plan, usage: Counter[str]) -> None:
        self.lib, self.rng, self.plan, self.usage = lib, rng, plan, usage
        self.day = plan.published.date()
        self.used: set[str] = set()

    def take(self, *pools: str) -> Template | None:
        """A template from the pools not yet in this story, favouring those the corpus has used
        least, so that neighbouring stories don't open the same way."""
        options = [t for name in pools for t in self.lib.pool(name, self.day, self.used)]
        if not options:
            return None
        weights = [1.0 / (1 + self.usage[t.key]) ** 2 for t in options]
        template = self.rng.choices(options, weights)[0]
        self.used.add(template.key)
        self.usage[template.key] += 1
        return template

    def positive_pools(self, theme: str, *, quotes: bool = True) -> list[str]:
        pools = [f"pos.{theme}.body"] + ([f"pos.{theme}.quotes"] if quotes else [])
        for other in self.plan.themes:
            if other != theme:
                for part in ("body", "quotes") if quotes else ("body",):
                    key = pair_key(theme, other, self.lib.pools, part)
                    if key:
                        pools.append(key)
        return pools

    def compose(self) -> list[Template]:
        pub, themes = self.plan.publisher, self.plan.themes
        n = self.rng.randint(*pub.pieces)
        middle: list[tuple[float, Template]] = []
        if themes:
            lede = None
            if len(themes) >= 2 and self.rng.random() < 0.45:
                key = pair_key(themes[0], themes[1], self.lib.pools, "lede")
                lede = self.take(key) if key else None
            lede = lede or self.take(f"pos.{themes[0]}.lede") or self.take(f"pos.{themes[0]}.body")
            if lede is None:
                raise ValueError(f"no positive template for {themes[0]} on {self.day}")
            covered = set(lede.labels)
            for theme in themes:
                if theme not in covered:
                    template = self.take(*self.positive_pools(theme))
                    if template:
                        covered.update(template.labels)
                        middle.append((0.0, template))
            # About half of a themed story tells its narrative; the rest is context.
            while 1 + len(middle) < math.ceil(n * 0.55):
                template = self.take(*self.positive_pools(self.rng.choice(themes)))
                if not template:
                    break
                middle.append((0.4, template))
            if self.rng.random() < 0.65:
                template = self.hard_negative(prefer=themes)
                if template:
                    middle.append((0.9, template))
        else:
            topic = self.plan.topic or "wrap"
            lede = self.take(f"no.{topic}.lede")
            if lede is None:
                raise ValueError(f"no lede for topic {topic} on {self.day}")
            own = (f"no.{topic}.body", f"no.{topic}.quotes", f"no.{topic}.aside")
            for _ in range(self.rng.randint(2, 3)):
                template = self.take(*own)
                if template:
                    middle.append((0.3, template))
            for _ in range(self.rng.randint(0, 2)):
                template = self.hard_negative(prefer=())
                if template:
                    middle.append((0.9, template))
        if not any(t.is_quote for t in [lede] + [t for _, t in middle]):
            quote_pools = [f"pos.{t}.quotes" for t in themes] or [f"no.{self.plan.topic}.quotes"]
            template = self.take(*quote_pools) or self.take("neutral.quotes")
            if template:
                middle.append((0.6, template))
        close = self.take("neutral.close") if self.rng.random() < 0.7 else None
        while len(middle) + 1 + (close is not None) < n:
            template = self.filler()
            if not template:
                break
            middle.append((1.2, template))
        middle.sort(key=lambda item: item[0] + self.rng.uniform(0, 1.6))
        ordered = [lede] + [t for _, t in middle]
        return ordered + ([close] if close else [])

    def hard_negative(self, prefer: tuple[str, ...]) -> Template | None:
        """A self-contained paragraph that tempts a theme without carrying it."""
        topics = list(self.lib.topics)
        preferred = [topic for topic in topics if self.lib.topics[topic] in prefer]
        if preferred and self.rng.random() < 0.65:
            topics = preferred
        return self.take(*[f"no.{topic}.aside" for topic in topics])

    def filler(self) -> Template | None:
        if self.plan.themes:
            return self.take("neutral.colour")
        return self.take("neutral.colour", "neutral.quotes", "neutral.colour")


def word_count(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def removable(templates: list[Template], index: int) -> bool:
    """A paragraph can go if it is not the lede and every theme it carries is carried elsewhere."""
    if index == 0:
        return False
    others = {label for i, t in enumerate(templates) if i != index for label in t.labels}
    return set(templates[index].labels) <= others


def merge_pieces(
    rng: random.Random, pub: Publisher, pieces: list[tuple[str, tuple[str, ...]]]
) -> list[tuple[str, tuple[str, ...]]]:
    """Run some pieces into multi-sentence paragraphs (never the lede, at most three pieces and
    one quote to a paragraph); a paragraph carries every theme of its pieces."""
    forced = max(0, len(pieces) - pub.max_paragraphs)
    optional = sum(rng.random() < pub.merge_share for _ in pieces[2:])
    wanted = min(max(forced, optional), len(pieces) - MIN_PARAGRAPHS)
    positions = list(range(2, len(pieces)))
    rng.shuffle(positions)
    joins: set[int] = set()
    for strict in (True, False):
        for i in positions:
            if len(joins) >= wanted or i in joins:
                continue
            group = [i]  # the paragraph piece i would end up in
            while group[0] in joins or group[0] == i:
                group.insert(0, group[0] - 1)
            j = i + 1
            while j in joins:
                group.append(j)
                j += 1
            quotes = sum(pieces[k][0].startswith(("“", '"')) for k in group)
            if len(group) <= 3 and (quotes <= 1 or not strict):
                joins.add(i)
    paragraphs: list[tuple[str, tuple[str, ...]]] = []
    for i, (text, labels) in enumerate(pieces):
        if i in joins:
            previous, previous_labels = paragraphs[-1]
            union = tuple(t for t in THEMES if t in previous_labels or t in labels)
            paragraphs[-1] = (f"{previous} {text}", union)
        else:
            paragraphs.append((text, labels))
    return paragraphs


def write_article(
    lib: Library,
    rng: random.Random,
    plan: Plan,
    prices: dict[str, dict[date, float]],
    taken_ids: set[str],
    usage: Counter[str],
) -> Generated:
    pub = plan.publisher
    composer = Composer(lib, rng, plan, usage)
    templates = composer.compose()
    renderer = Renderer(lib, pub, plan.published, rng, prices)
    for _ in range(12):
        renderer.reset()
        texts = [renderer.paragraph(t) for t in templates]
        words = word_count(texts)
        if words > MAX_WORDS and len(templates) > 4:
            candidates = [i for i in range(len(templates)) if removable(templates, i)]
            if candidates:
                templates.pop(max(candidates, key=lambda i: len(texts[i])))
                continue
        if words < MIN_WORDS or len(templates) < 4:
            extra = composer.filler()
            if extra:
                templates.insert(len(templates) - 1, extra)
                continue
        break
    paragraphs = merge_pieces(
        rng, pub, [(text, t.labels) for text, t in zip(texts, templates, strict=True)]
    )
    subhead_at = None
    if pub.key in SUBHEAD_PUBLISHERS and len(paragraphs) >= 6 and rng.random() < 0.6:
        subhead_at = rng.randint(2, len(paragraphs) - 2)
        paragraphs.insert(subhead_at, (rng.choice(lib.subheads), ()))
    kicker, headline = make_headline(lib, rng, plan, renderer, templates[0])
    title = kicker + headline
    slug = slugify(headline)
    local = plan.published.date()
    article_id = f"{pub.key}:{local.isoformat()}-{slug}"
    while article_id in taken_ids:
        slug += "-2"
        article_id = f"{pub.key}:{local.isoformat()}-{slug}"
    taken_ids.add(article_id)
    article = Article(
        id=article_id,
        source=pub.domain,
        publisher=pub.name,
        published=iso_published(plan.published, plan.zulu),
        title=title,
        author=rng.choice(pub.authors),
        text="\n\n".join(text for text, _ in paragraphs),
        url=f"https://{pub.domain}/{local:%Y/%m/%d}/{slug}",
    )
    return Generated(article, paragraphs, plan, subhead_at)


def headline_options(lib: Library, group: str, day: date) -> list[Template]:
    """Headlines for a theme, pair or topic: its own list plus those its ledes bring."""
    options = [t for t in lib.headlines.get(group, []) if t.usable_on(day)]
    pool = lib.pools.get(f"{group}.lede", [])
    options += [
        Template(key=f"{t.key}.headline", labels=(), text=t.headline)
        for t in pool
        if t.headline and t.usable_on(day)
    ]
    return options


def make_headline(
    lib: Library, rng: random.Random, plan: Plan, renderer: Renderer, lede: Template
) -> tuple[str, str]:
    """The kicker and the headline in the publisher's case; usually the lede's own headline."""
    themes, day = plan.themes, plan.published.date()
    if lede.headline and rng.random() < 0.8:
        options = [Template(key=f"{lede.key}.headline", labels=(), text=lede.headline)]
    else:
        if len(lede.labels) > 1:
            group = f"overlap.{'+'.join(lede.labels)}"
        elif themes:
            group = f"pos.{themes[0]}"
        else:
            group = f"no.{plan.topic}"
        options = headline_options(lib, group, day) or headline_options(
            lib, f"pos.{themes[0]}", day
        )
    if not options:
        raise ValueError(f"no headline template for {themes or plan.topic} on {day}")
    # A headline naming a company must be about a company the story mentions.
    fitting = [
        t
        for t in options
        if all(
            renderer.security(k).key in renderer.mentioned for k in re.findall(r"N:(\w+)", t.text)
        )
    ]
    title = renderer.headline(rng.choice(fitting or options))
    if plan.publisher.headline_case == "title":
        title = title_case(title)
    return rng.choice(plan.publisher.kickers), title


# --------------------------------------------------------------------------------------------
# Plans: who publishes what, when


def quiet_level(theme: str) -> float:
    """A theme's median intensity over the year: its level when nothing much is happening."""
    values = sorted(intensity(theme, d) for d in year_days())
    return values[len(values) // 2]


def plan_corpus(lib: Library, rng: random.Random) -> list[Plan]:
    days = news_days()
    quiet = {t: quiet_level(t) for t in THEMES}
    plans = []
    for pub in PUBLISHERS:
        weights = []
        for day in days:
            weight = pub.weekend_weight if day.weekday() >= 5 else 1.0
            if day.weekday() < 5 and day in NYSE_HOLIDAYS:
                weight *= 0.2
            # News volume surges when a narrative flares above its usual level.
            flare = sum(max(0.0, intensity(t, day) - quiet[t]) ** 2 for t in THEMES)
            weight *= 1.0 + NEWS_SURGE * flare
            weights.append(weight)
        chosen = sorted(rng.choices(days, weights, k=pub.volume))
        if pub.key == "tickertape":
            chosen[0] = FIRST_NEWS_DAY
        if pub.key == "harborstreet":
            chosen[-1] = date(YEAR, 12, 31)
        for day in chosen:
            plans.append(plan_article(lib, rng, pub, day))
    plans.sort(key=lambda p: (p.published, p.publisher.key))
    return plans


def plan_article(
    lib: Library,
    rng: random.Random,
    pub: Publisher,
    day: date,
    themes: tuple[str, ...] | None = None,
) -> Plan:
    if day.weekday() >= 5:
        hours = rng.uniform(8.0, 14.0)
    else:
        start, end, _ = rng.choices(pub.hours, [w for _, _, w in pub.hours])[0]
        hours = rng.uniform(start, end)
    moment = et_datetime(day, hours)
    if themes is None:
        themes = choose_themes(rng, day)
    topic = None if themes else choose_topic(rng, lib, day)
    return Plan(pub, moment, themes, topic, rng.random() < pub.utc_share)


# --------------------------------------------------------------------------------------------
# Prices


def make_prices(seed: int) -> tuple[list[PriceRow], dict[str, dict[date, float]]]:
    rng = random.Random(f"{seed}:prices")
    days = year_days()
    lagged = {t: [intensity(t, d - timedelta(days=PRICE_LAG_DAYS)) for d in days] for t in THEMES}
    quiet = {t: sorted(values)[len(values) // 2] for t, values in lagged.items()}
    log_level = {ticker: math.log(model.start) for ticker, model in PRICE_MODEL.items()}
    last_day: dict[str, int] = {}
    series: dict[str, dict[date, float]] = {ticker: {} for ticker in PRICE_MODEL}
    rows = []
    for i, day in enumerate(days):
        trading = is_trading_day(day)
        market = rng.gauss(MARKET_DRIFT, MARKET_VOL) if trading else 0.0
        for ticker, m in PRICE_MODEL.items():
            if not trading and ticker != "BTC-USD":
                continue
            if ticker in last_day:  # a ticker's first day prints its starting close
                j = last_day[ticker]
                mu = m.drift + sum(k * (lagged[t][i] - quiet[t]) for t, k in m.trend.items())
                mu += sum(k * (lagged[t][i] - lagged[t][j]) for t, k in m.level.items())
                sigma = m.vol + sum(k * lagged[t][i] for t, k in m.vol_up.items())
                log_level[ticker] += m.beta * market + mu + rng.gauss(0.0, sigma)
            last_day[ticker] = i
            close = round(math.exp(log_level[ticker]), 2)
            series[ticker][day] = close
            rows.append(PriceRow(day.isoformat(), ticker, f"{close:.2f}"))
    return rows, series


# --------------------------------------------------------------------------------------------
# HTML pages, feeds


def first_sentences(text: str, min_words: int = 22) -> str:
    """The first sentence of `text`, or the first two when the first is short."""
    ends = [
        m.end()
        for m in re.finditer(r"[.!?][”\"]?(?=\s+[A-Z“\"$])", text)
        if not re.search(r"\b(?:Inc|Corp|Co|Jr|St|U\.S)\.$", text[: m.end()])
    ]
    ends.append(len(text))
    summary = text[: ends[0]]
    if len(summary.split()) < min_words and len(ends) > 1:
        summary = text[: ends[1]]
    return summary.strip()


def human_time(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    meridiem = "a.m." if moment.hour < 12 else "p.m."
    return f"{moment:%B} {moment.day}, {moment.year} at {hour}:{moment:%M} {meridiem} ET"


def json_ld(article: Article, modified: str, pub: Publisher) -> str:
    block = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published,
        "dateModified": modified,
        "author": [{"@type": "Person", "name": article.author}],
        "publisher": {
            "@type": "Organization",
            "name": pub.name,
            "logo": {"@type": "ImageObject", "url": f"https://{pub.domain}/static/logo.png"},
        },
        "mainEntityOfPage": {"@type": "WebPage", "@id": article.url},
        "articleSection": "Markets",
        "isAccessibleForFree": True,
    }
    return json.dumps(block, ensure_ascii=False, indent=2)


def render_tickertape_page(
    lib: Library, gen: Generated, related: list[Article], prices: dict[str, dict[date, float]]
) -> str:
    e = html.escape
    moment = gen.plan.published
    modified = (moment + timedelta(minutes=47)).isoformat(timespec="seconds")
    strip = []
    session = session_of(moment)
    for ticker in ("SPY", "IWM", "QQQ", "GLD", "BTC-USD"):
        series = prices[ticker]
        today = series.get(session) or series[previous_trading_day(session)]
        change = 100 * (today / series[previous_trading_day(session)] - 1)
        css = "up" if change >= 0 else "down"
        strip.append(
            f'      <li><span class="sym">{ticker}</span> {today:,.2f} '
            f'<span class="{css}">{change:+.2f}%</span></li>'
        )
    body = []
    for i, (text, _) in enumerate(gen.paragraphs):
        body.append(f"        <p>{e(text)}</p>")
        if i == 1:
            body.append(lib.page_parts["tickertape_promo"])
        if i == 3:
            body.append('        <div class="ad-slot" data-slot="mid-article-1"></div>')
    return lib.page_parts["tickertape"].format(
        **page_fields(gen, modified),
        description=e(first_sentences(gen.paragraphs[0][0])),
        market_strip="\n".join(strip),
        body="\n".join(body),
        related="\n".join(
            f'        <li><a href="{e(r.url)}">{e(r.title)}</a></li>' for r in related
        ),
    )


def page_fields(gen: Generated, modified: str) -> dict[str, str]:
    """What both page templates fill in, escaped for HTML."""
    a, e = gen.article, html.escape
    return {
        "title": e(a.title),
        "url": e(a.url),
        "domain": gen.plan.publisher.domain,
        "image_slug": slugify(a.title),
        "published": a.published,
        "modified": modified,
        "author": e(a.author),
        "author_slug": slugify(a.author),
        "json_ld": json_ld(a, modified, gen.plan.publisher),
        "human_time": human_time(gen.plan.published),
        "year": str(YEAR),
    }


def render_harborstreet_page(
    lib: Library, gen: Generated, related: list[Article], charset: str
) -> str:
    e = html.escape
    moment = gen.plan.published
    modified = (moment + timedelta(hours=2, minutes=5)).isoformat(timespec="seconds")
    body = []
    for i, (text, _) in enumerate(gen.paragraphs):
        if i == gen.subhead_at:
            body.append(f'          <h2 class="article__subhead">{e(text)}</h2>')
        else:
            body.append(f'          <p class="article__para">{e(text)}</p>')
        if i == 2 and related:
            body.append(
                f'          <p class="read-next"><strong>Read next:</strong> '
                f'<a href="{e(related[0].url)}">{e(related[0].title)}</a></p>'
            )
    return lib.page_parts["harborstreet"].format(
        **page_fields(gen, modified),
        charset=charset,
        description=e(first_sentences(gen.paragraphs[0][0], min_words=0)),
        masthead_date=f"{moment:%A, %B} {moment.day}, {moment.year}",
        body="\n".join(body),
        related="\n".join(
            f'          <li class="rail__item"><a href="{e(r.url)}">{e(r.title)}</a>'
            f'<span class="rail__time">{e(r.published[:10])}</span></li>'
            for r in related[1:]
        ),
    )


def rss_date(published: str) -> str:
    moment = datetime.fromisoformat(published.replace("Z", "+00:00"))
    return format_datetime(moment, usegmt=published.endswith("Z"))


def guid(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]


def render_rss(items: list[Generated]) -> str:
    pub = PUBLISHER_BY_KEY["harborstreet"]
    newest = max(items, key=lambda g: g.plan.published)
    entries = []
    for i, gen in enumerate(sorted(items, key=lambda g: g.plan.published, reverse=True)):
        a = gen.article
        link = a.url + ("?utm_source=rss&utm_medium=feed" if i % 3 == 1 else "")
        summary = first_sentences(gen.paragraphs[0][0])
        description = f"<![CDATA[{summary}]]>" if i % 4 == 2 else xml_escape(summary)
        entries.append(
            f"""    <item>
      <title>{xml_escape(a.title)}</title>
      <link>{xml_escape(link)}</link>
      <description>{description}</description>
      <pubDate>{rss_date(a.published)}</pubDate>
      <guid isPermaLink="false">harborstreet-{guid(a.url)}</guid>
      <dc:creator>{xml_escape(a.author)}</dc:creator>
      <category>Markets</category>
    </item>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Harbor Street Journal - Markets</title>
    <link>https://{pub.domain}/markets/</link>
    <description>Stocks, bonds and the stories that move them.</description>
    <language>en-us</language>
    <copyright>Copyright {YEAR} Harbor Street Journal</copyright>
    <lastBuildDate>{rss_date(newest.article.published)}</lastBuildDate>
    <ttl>15</ttl>
    <atom:link href="https://{pub.domain}/rss/markets.xml" rel="self" type="application/rss+xml"/>
{chr(10).join(entries)}
  </channel>
</rss>
"""


def render_atom(items: list[Generated]) -> str:
    pub = PUBLISHER_BY_KEY["boursewire"]
    ordered = sorted(items, key=lambda g: g.plan.published, reverse=True)
    entries = []
    for gen in ordered:
        a = gen.article
        when = gen.plan.published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        slug = a.url.rsplit("/", 1)[-1]
        entries.append(
            f"""  <entry>
    <title type="text">{xml_escape(a.title)}</title>
    <link rel="alternate" type="text/html" href="{xml_escape(a.url)}"/>
    <id>tag:{pub.domain},{a.published[:10]}:{slug}</id>
    <published>{when}</published>
    <updated>{when}</updated>
    <author><name>{xml_escape(a.author)}</name></author>
    <summary type="text">{xml_escape(first_sentences(gen.paragraphs[0][0]))}</summary>
  </entry>"""
        )
    updated = ordered[0].plan.published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
  <title>Bourse Wire: Markets</title>
  <subtitle>Fast market news from Bourse Wire.</subtitle>
  <link rel="alternate" type="text/html" href="https://{pub.domain}/"/>
  <link rel="self" type="application/atom+xml" href="https://{pub.domain}/feeds/markets.atom"/>
  <id>tag:{pub.domain},{YEAR}:feeds/markets</id>
  <updated>{updated}</updated>
  <rights>Copyright {YEAR} Bourse Wire</rights>
{chr(10).join(entries)}
</feed>
"""


# --------------------------------------------------------------------------------------------
# Statistics and README

KEYWORDS = {
    "rate_cut_trade": r"\bcuts?\b|\bcutting\b",
    "trump_trade": r"\bTrump",
    "short_squeeze": r"\bshort",
    "dash_for_trash": r"speculat|\bjunk\b|\btrash\b",
}


@dataclass
class Stats:
    articles: int = 0
    paragraphs: int = 0
    per_publisher: Counter = field(default_factory=Counter)
    per_month: Counter = field(default_factory=Counter)
    theme_articles: Counter = field(default_factory=Counter)
    theme_paragraphs: Counter = field(default_factory=Counter)
    month_theme: Counter = field(default_factory=Counter)
    no_theme_articles: int = 0
    multi_theme_paragraphs: int = 0
    words: list[int] = field(default_factory=list)
    repeated_paragraphs: int = 0  # identical to an earlier paragraph
    keyword: dict[str, Counter] = field(default_factory=dict)


def collect_stats(corpus: list[Generated]) -> Stats:
    stats = Stats(keyword={t: Counter() for t in THEMES})
    seen: set[str] = set()
    for gen in corpus:
        month = gen.plan.published.strftime("%m")
        stats.articles += 1
        stats.per_publisher[gen.plan.publisher.name] += 1
        stats.per_month[month] += 1
        stats.words.append(len(gen.article.text.split()))
        themes = {label for _, labels in gen.paragraphs for label in labels}
        if not themes:
            stats.no_theme_articles += 1
        for theme in themes:
            stats.theme_articles[theme] += 1
            stats.month_theme[month, theme] += 1
        for text, labels in gen.paragraphs:
            stats.paragraphs += 1
            stats.repeated_paragraphs += text in seen
            seen.add(text)
            stats.multi_theme_paragraphs += len(labels) > 1
            for theme in THEMES:
                hit = bool(re.search(KEYWORDS[theme], text))
                stats.keyword[theme][hit, theme in labels] += 1
                stats.theme_paragraphs[theme] += theme in labels
    return stats


def stats_markdown(stats: Stats) -> str:
    lines = [
        f"- {stats.articles} articles, {stats.paragraphs} labelled paragraphs; "
        f"article length {min(stats.words)}–{max(stats.words)} words "
        f"(median {sorted(stats.words)[len(stats.words) // 2]}).",
        f"- {stats.no_theme_articles} articles "
        f"({100 * stats.no_theme_articles / stats.articles:.0f}%) carry no theme; "
        f"{stats.multi_theme_paragraphs} paragraphs carry two themes.",
        "",
        "| publisher | articles |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {count} |" for name, count in stats.per_publisher.most_common()]
    lines += ["", "| theme | articles | paragraphs |", "|---|---:|---:|"]
    lines += [f"| {t} | {stats.theme_articles[t]} | {stats.theme_paragraphs[t]} |" for t in THEMES]
    header = "| month | articles | " + " | ".join(THEMES) + " |"
    lines += ["", "Articles per month, and how many carry each theme:", "", header]
    lines.append("|---|---:|" + "---:|" * len(THEMES))
    for month in sorted(stats.per_month):
        cells = " | ".join(str(stats.month_theme[month, t]) for t in THEMES)
        lines.append(f"| {YEAR}-{month} | {stats.per_month[month]} | {cells} |")
    lines += [
        "",
        "How far a naive keyword rule gets (paragraph contains the word → theme):",
        "",
        "| theme | keyword | precision | recall |",
        "|---|---|---:|---:|",
    ]
    for theme in THEMES:
        c = stats.keyword[theme]
        tp, fp, fn = c[True, True], c[True, False], c[False, True]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        keyword = KEYWORDS[theme].replace("|", " or ").replace("\\b", "")
        lines.append(f"| {theme} | `{keyword}` | {precision:.2f} | {recall:.2f} |")
    return "\n".join(lines)


def curves_markdown() -> str:
    months = [date(YEAR, m, 15) for m in range(1, 13)]
    header = "| theme | " + " | ".join(d.strftime("%b") for d in months) + " |"
    lines = [header, "|---|" + "---:|" * 12]
    for theme in THEMES:
        values = []
        for m in range(1, 13):
            days = [d for d in year_days() if d.month == m]
            values.append(f"{sum(intensity(theme, d) for d in days) / len(days):.2f}")
        lines.append(f"| {theme} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def proxies_markdown() -> str:
    rows = []
    for theme in THEMES:
        parts = [
            f"{t} trend {m.trend[theme]:+.3f}/day"
            for t, m in PRICE_MODEL.items()
            if theme in m.trend
        ]
        parts += [
            f"{t} level {m.level[theme]:+.2f}" for t, m in PRICE_MODEL.items() if theme in m.level
        ]
        rows.append(f"| {theme} | {', '.join(parts)} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# Main


def write_jsonl(path: Path, records: list) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for record in records:
            out.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


def generate(out: Path, seed: int, templates: Path) -> Stats:
    lib = load_library(templates)
    price_rows, prices = make_prices(seed)
    rng = random.Random(f"{seed}:articles")
    taken: set[str] = set()
    usage: Counter[str] = Counter()
    corpus = [write_article(lib, rng, plan, prices, taken, usage) for plan in plan_corpus(lib, rng)]

    page_rng = random.Random(f"{seed}:pages")
    pages = []
    for key, day, themes, charset in PAGE_PLANS:
        plan = plan_article(lib, page_rng, PUBLISHER_BY_KEY[key], day, themes)
        plan.zulu = False
        pages.append((write_article(lib, page_rng, plan, prices, taken, usage), charset))
    feed_rng = random.Random(f"{seed}:feeds")
    feed_only = []
    for day in FEED_ONLY_DATES:
        plan = plan_article(lib, feed_rng, PUBLISHER_BY_KEY["boursewire"], day)
        feed_only.append(write_article(lib, feed_rng, plan, prices, taken, usage))

    out.mkdir(parents=True, exist_ok=True)
    (out / "pages").mkdir(exist_ok=True)
    (out / "feeds").mkdir(exist_ok=True)
    write_jsonl(out / "articles.jsonl", [g.article for g in corpus])
    write_jsonl(
        out / "labels.jsonl",
        [
            LabelledParagraph(
                f"{g.article.id}#p{n}", g.article.id, g.article.published, text, list(labels)
            )
            for g in corpus
            for n, (text, labels) in enumerate(g.paragraphs)
        ],
    )
    with (out / "prices.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["date", "ticker", "close"])
        writer.writerows([row.date, row.ticker, row.close] for row in price_rows)

    for stale in (out / "pages").glob("*.html"):
        stale.unlink()
    expected = []
    for gen, charset in pages:
        pub = gen.plan.publisher
        earlier = [
            g.article
            for g in corpus
            if g.plan.publisher is pub and g.plan.published < gen.plan.published
        ]
        related = list(reversed(earlier[-5:]))
        if pub.key == "tickertape":
            page = render_tickertape_page(lib, gen, related, prices)
        else:
            page = render_harborstreet_page(lib, gen, related, charset)
        name = f"{gen.article.id.replace(':', '-')}.html"
        (out / "pages" / name).write_bytes(page.encode(charset))
        record = {"file": f"pages/{name}", "encoding": charset, **asdict(gen.article)}
        record["labels"] = [list(labels) for _, labels in gen.paragraphs]
        expected.append(record)
    with (out / "pages_expected.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for record in expected:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    harbor = [g for g in corpus if g.plan.publisher.key == "harborstreet"]
    rss_items = sorted(harbor, key=lambda g: g.plan.published)[-RSS_ITEMS:]
    (out / "feeds" / "harborstreet.xml").write_text(render_rss(rss_items), encoding="utf-8")
    bourse = [g for g in corpus if g.plan.publisher.key == "boursewire"]
    atom_items = sorted(bourse, key=lambda g: g.plan.published)[-ATOM_LINKED_ITEMS:] + feed_only
    (out / "feeds" / "bourse-wire.atom").write_text(render_atom(atom_items), encoding="utf-8")

    stats = collect_stats(corpus)
    cp1252 = [rec["file"] for rec in expected if rec["encoding"] == "windows-1252"]
    readme = lib.page_parts["readme"].format(
        seed=seed,
        n_pages=len(pages),
        cp1252_page=", ".join(f"`{f}`" for f in cp1252) or "None",
        n_rss=len(rss_items),
        n_atom=len(atom_items),
        n_atom_linked=ATOM_LINKED_ITEMS,
        feed_only=len(feed_only),
        tickers=", ".join(PRICE_MODEL),
        year=YEAR,
        max_share=MAX_SHARE,
        max_themes=MAX_THEMES_PER_ARTICLE,
        curves=curves_markdown(),
        stats=stats_markdown(stats),
        lag=PRICE_LAG_DAYS,
        proxies=proxies_markdown(),
        dup_share=f"{stats.repeated_paragraphs / stats.paragraphs:.0%}",
        feed_only_list="\n".join(
            f"- `{g.article.url}` ({g.article.published}): {g.article.title}" for g in feed_only
        ),
    )
    (out / "README.md").write_text(readme, encoding="utf-8")
    write_sample_kb(lib, out / "kb.toml")
    return stats


def write_sample_kb(lib: Library, path: Path) -> None:
    """The fictional companies as KB entries, so the demo links them like real listings."""
    lines = [
        "# Knowledge-base entries for the fictional companies of the sample corpus (generated by",
        "# scripts/make_sample_corpus.py from scripts/sample_templates.toml; same schema as",
        "# src/narratives/data/kb_core.toml). `narratives demo` adds it with `--kb`.",
    ]
    for sector in sorted(lib.companies):
        for company in lib.companies[sector]:
            legal = company.name
            aliases = [a for a in dict.fromkeys([legal, company.short]) if a != company.short]
            lines += [
                "",
                "[[entity]]",
                f'id = "stock:{company.symbol}"',
                'kind = "company"',
                f"name = {json.dumps(company.short)}",
                f'ticker = "{company.symbol}"',
                f'exchange = "{company.exchange}"',
                f"aliases = {json.dumps(aliases)}",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--templates", type=Path, default=DEFAULT_TEMPLATES, help="paragraph templates (TOML)"
    )
    args = parser.parse_args(argv)
    stats = generate(args.out, args.seed, args.templates)
    print(stats_markdown(stats))


if __name__ == "__main__":
    main()
