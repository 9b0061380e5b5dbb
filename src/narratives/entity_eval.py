"""Scoring the entity linker against hand-annotated articles ([[surface|ID]] markup)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from narratives.entities import EntityLinker, split_paragraphs
from narratives.kb import ticker_key

MARKUP = re.compile(r"\[\[([^\]|]+)\|([^\]]+)\]\]")
KINDS = ("ticker", "person", "index", "commodity")


@dataclass(frozen=True)
class GoldMention:
    start: int
    end: int
    text: str
    id: str  # a ticker (AAPL), or crypto:BTC, index:..., commodity:..., person:Full Name

    @property
    def kind(self) -> str:
        prefix = self.id.split(":", 1)[0] if ":" in self.id else ""
        return prefix if prefix in ("person", "index", "commodity") else "ticker"


@dataclass(frozen=True)
class GoldArticle:
    id: str
    title: str
    text: str
    mentions: tuple[GoldMention, ...]


def strip_markup(marked: str) -> tuple[str, list[GoldMention]]:
    """Plain text and the gold spans of `[[surface|ID]]` markup."""
    parts, mentions, at, length = [], [], 0, 0
    for m in MARKUP.finditer(marked):
        parts.append(marked[at : m.start()])
        length += m.start() - at
        surface, gold_id = m.group(1), m.group(2).strip()
        mentions.append(GoldMention(length, length + len(surface), surface, gold_id))
        parts.append(surface)
        length += len(surface)
        at = m.end()
    parts.append(marked[at:])
    return "".join(parts), mentions


def read_gold(path: Path) -> list[GoldArticle]:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    articles = []
    for table in document.get("article", []):
        text, mentions = strip_markup(table["text"].strip("\n"))
        articles.append(GoldArticle(table["id"], table.get("title", ""), text, tuple(mentions)))
    return articles


def _ticker_ids(tickers: set[str], kind: str) -> set[str]:
    keys = {ticker_key(t) for t in tickers}
    return {f"CRYPTO:{k}" for k in keys} if kind == "crypto" else keys


def score_gold(linker: EntityLinker, articles: list[GoldArticle]) -> dict[str, object]:
    """Precision (and recall, for information) per kind: tickers, people, indices, commodities.

    A predicted mention is right when a gold mention overlaps it and names the same thing: the
    same ticker for companies, funds and crypto; the same full name for people; any index or
    commodity for those kinds.
    """
    counts = {k: Counter() for k in KINDS}
    wrong: list[str] = []
    keyed = [(a.id, [p for _, p in split_paragraphs(a.text)]) for a in articles]
    for article, mentions in zip(articles, linker.link_articles(keyed), strict=True):
        paragraphs = split_paragraphs(article.text)
        hit: set[GoldMention] = set()
        for m in mentions:
            offset = paragraphs[m.paragraph][0]
            start, end = m.start + offset, m.end + offset
            near = [g for g in article.mentions if g.start < end and start < g.end]
            if m.kind == "person":
                kind = "person"
                good = [g for g in near if g.id == f"person:{m.name}"]
            elif m.ticker:
                entity = linker.kb.get(m.entity_id)
                tickers = set(entity.tickers) if entity else set()
                ids = _ticker_ids(tickers | {m.ticker}, m.kind)
                kind = "ticker"
                good = [g for g in near if ticker_key(g.id) in ids]
            elif m.kind in ("index", "commodity"):
                kind = m.kind
                good = [g for g in near if g.kind == m.kind]
            else:
                continue
            counts[kind]["predicted"] += 1
            counts[kind]["correct"] += bool(good)
            hit.update(good)
            if not good:
                wrong.append(
                    f"{article.id}: {m.text!r} → {m.entity_id} (gold: {[g.id for g in near]})"
                )
        for g in article.mentions:
            counts[g.kind]["gold"] += 1
            counts[g.kind]["found"] += g in hit
    result: dict[str, object] = {"articles": len(articles)}
    for kind, c in counts.items():
        result[kind] = {
            "precision": round(c["correct"] / max(1, c["predicted"]), 4),
            "recall": round(c["found"] / max(1, c["gold"]), 4),
            "predicted": c["predicted"],
            "correct": c["correct"],
            "gold": c["gold"],
        }
    result["wrong"] = wrong
    return result
