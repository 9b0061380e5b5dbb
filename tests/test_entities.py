"""Entity linking: ticker forms, names, people, the KB files and builder, storage and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from narratives.cli import cli
from narratives.entities import EntityLinker, entities_jsonl, load_spacy
from narratives.kb import (
    Entity,
    KnowledgeBase,
    KnowledgeBaseError,
    build_kb,
    build_kb_from,
    clean_company_name,
    derive_aliases,
    load_kb,
    read_kb_toml,
    read_listings,
)
from narratives.mentions import link_corpus, top_entities
from narratives.store import Corpus
from narratives.text import content_hash

# A small KB written for these tests, so they do not move when the shipped core KB grows.
TEST_KB = [
    Entity(
        id="stock:COIN",
        kind="company",
        name="Coinbase",
        ticker="COIN",
        aliases=("Coinbase Global", "Coinbase Global, Inc."),
    ),
    Entity(id="stock:TGT", kind="company", name="Target", ticker="TGT", ambiguous=True),
    Entity(id="stock:AAPL", kind="company", name="Apple", ticker="AAPL", aliases=("Apple Inc.",)),
    Entity(id="stock:TSLA", kind="company", name="Tesla", ticker="TSLA"),
    Entity(id="etf:IWM", kind="fund", name="iShares Russell 2000 ETF", ticker="IWM"),
    Entity(id="index:russell-2000", kind="index", name="Russell 2000", symbols=("RUT",)),
    Entity(
        id="crypto:BTC",
        kind="crypto",
        name="bitcoin",
        ticker="BTC",
        aliases=("Bitcoin",),
        symbols=("BTCUSD",),
    ),
    Entity(id="commodity:gold", kind="commodity", name="gold"),
    Entity(
        id="person:jerome-powell",
        kind="person",
        name="Jerome Powell",
        aliases=("Jay Powell",),
        short_names=("Powell",),
        role="Chair",
        affiliation="Federal Reserve",
    ),
]


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


@pytest.fixture(scope="module")
def linker(nlp) -> EntityLinker:
    kb = KnowledgeBase()
    kb.extend(TEST_KB)
    return EntityLinker(kb, nlp=nlp)


def found(linker: EntityLinker, text: str) -> dict[str, tuple[str, str | None]]:
    """surface → (entity id, ticker) for every mention in `text`."""
    return {m.text: (m.entity_id, m.ticker) for m in linker.link_text(text, key="t")}


def test_ticker_forms_in_parentheses_cashtags_quotes_and_pairs(linker):
    text = (
        "Small caps (IWM) rallied. Acme Widgets (NYSE: ACME) and Borealis Mining "
        "(Nasdaq:BRLM) rose, $TSLA slipped, Coinbase Global COIN, +0.92% gained and bitcoin "
        "BTCUSD held near highs."
    )
    got = found(linker, text)
    assert got["IWM"] == ("etf:IWM", "IWM")
    assert got["Acme Widgets"] == ("stock:ACME", "ACME")
    assert got["ACME"] == ("stock:ACME", "ACME")
    assert got["Borealis Mining"] == ("stock:BRLM", "BRLM")
    assert got["$TSLA"] == ("stock:TSLA", "TSLA")
    assert got["Coinbase Global"] == ("stock:COIN", "COIN")
    assert got["COIN"] == ("stock:COIN", "COIN")
    assert got["BTCUSD"] == ("crypto:BTC", "BTC")
    assert got["bitcoin"] == ("crypto:BTC", "BTC")


def test_acronyms_in_parentheses_are_not_tickers(linker):
    text = (
        "The chief executive officer (CEO) said exchange-traded fund (ETF) flows into "
        "artificial intelligence (AI) names grew faster than gross domestic product (GDP). "
        "The Consumer Price Index (CPIX) rose and the Federal Housing Finance Agency (FHFA) "
        "spoke."
    )
    assert linker.link_text(text) == []


def test_ibd_style_name_before_ticker_takes_the_company_not_the_sentence_opener(linker):
    got = found(linker, "Shares of Apple (AAPL) rose. When Michael Kors (KORS) listed, it soared.")
    assert got["Apple"] == ("stock:AAPL", "AAPL")
    assert got["Michael Kors"] == ("stock:KORS", "KORS")
    got = found(
        linker, "Chipmakers rallied, and Domino's Pizza (DPZ) and Freeport-McMoRan (FCX) too."
    )
    assert got["Domino's Pizza"][1] == "DPZ"
    assert got["Freeport-McMoRan"][1] == "FCX"


def test_ambiguous_company_names_need_context(linker):
    assert "Target" in found(linker, "Shares of Apple and Target shares rose on Monday.")
    assert found(linker, "Analysts raised the target price. Target: $50.").keys() == set()
    assert found(linker, "The price target was cut.") == {}


def test_people_kb_surname_role_affiliation_and_locals(linker):
    text = (
        "Fed Chair Jerome Powell spoke on Wednesday. “We are patient,” said Dana Whitcombe, "
        "chief market technician at Osprey Hill Research.\n\n"
        "Whitcombe expects Powell to move in September."
    )
    mentions = linker.link_text(text, key="a1")
    people = [(m.text, m.entity_id, m.role, m.affiliation) for m in mentions if m.kind == "person"]
    assert ("Jerome Powell", "person:jerome-powell", "Chair", "Fed") in people
    assert (
        "Dana Whitcombe",
        "local:a1:dana-whitcombe",
        "chief market technician",
        "Osprey Hill Research",
    ) in people
    later = {m.text: m.entity_id for m in mentions if m.start > text.index("\n\n")}
    assert later == {"Whitcombe": "local:a1:dana-whitcombe", "Powell": "person:jerome-powell"}


def test_offsets_point_at_the_text(linker):
    text = "Intro line.\n\nThe Russell 2000 RUT rose as gold slipped and Coinbase (COIN) fell."
    for m in linker.link_text(text):
        assert text[m.start : m.end] == m.text
    kinds = {m.text: m.kind for m in linker.link_text(text)}
    assert kinds["RUT"] == "index" and kinds["gold"] == "commodity"


def test_entities_jsonl_keeps_order_and_format(linker):
    lines = [
        json.dumps({"id": 2, "text": "Tesla (TSLA) fell."}),
        json.dumps({"id": "a", "text": "Nothing here."}),
    ]
    out: list[str] = []
    assert entities_jsonl(linker, lines, out.append) == 2
    rows = [json.loads(line) for line in out]
    assert [r["id"] for r in rows] == [2, "a"]
    assert rows[1]["entities"] == []
    first = rows[0]["entities"][0]
    assert {"start", "end", "text", "kind", "entity_id", "name", "ticker"} <= first.keys()
    assert (first["text"], first["ticker"], first["name"]) == ("Tesla", "TSLA", "Tesla")


# -- the KB ---------------------------------------------------------------------------------


def test_aliases_derived_from_legal_names():
    assert derive_aliases("Coinbase Global, Inc.")[:3] == [
        "Coinbase Global, Inc.",
        "Coinbase Global",
        "Coinbase",
    ]
    assert "JPMorgan Chase" in derive_aliases("JPMorgan Chase & Co.")
    assert "General" not in derive_aliases("General Motors Company")
    assert clean_company_name("Home Depot, Inc. (The) Common Stock") == "Home Depot, Inc."
    assert clean_company_name("NVIDIA CORP") == "Nvidia Corp"


def test_build_kb_reads_sec_and_listing_files_and_groups_share_classes():
    sec = {
        "0": {"cik_str": 1, "ticker": "GOOGL", "title": "Alphabet Inc."},
        "1": {"cik_str": 1, "ticker": "GOOG", "title": "Alphabet Inc."},
        "2": {"cik_str": 2, "ticker": "COIN", "title": "COINBASE GLOBAL, INC."},
        "3": {"cik_str": 3, "ticker": "BAC-PL", "title": "BANK OF AMERICA CORP"},
    }
    listings = read_listings(json.dumps(sec).encode(), source="sec")
    csv = 'Symbol,Company Name,ETF\nCOIN,"Coinbase Global, Inc. - Class A Common Stock",N\n'
    listings += read_listings(csv.encode(), source="csv")
    entities = {e.ticker: e for e in build_kb(listings)}
    assert entities["GOOGL"].other_tickers == ("GOOG",)
    assert "Alphabet" in entities["GOOGL"].aliases
    assert entities["COIN"].name == "Coinbase"
    assert {"Coinbase Global", "Coinbase Global, Inc."} <= set(entities["COIN"].aliases)
    assert "BAC-PL" not in entities  # preferred shares are not companies


def test_unreadable_listings_say_what_is_expected():
    with pytest.raises(KnowledgeBaseError, match="Symbol/Ticker column"):
        read_listings(b"a,b\n1,2\n", source="x.csv")
    with pytest.raises(KnowledgeBaseError, match="not valid JSON"):
        read_listings(b"{broken", source="x.json")


def test_kb_build_from_url_and_file(server, tmp_path, fast_policy):
    listing = "Symbol,Security\nZZZQ,Zephyr Quartz Holdings Inc.\n"
    url = server.route("/listing.csv", listing, content_type="text/csv")
    local = tmp_path / "sec.json"
    local.write_text(json.dumps({"0": {"cik_str": 9, "ticker": "YYQ", "title": "Yarrow Co"}}))
    out = tmp_path / "kb.jsonl"
    summary = build_kb_from([url, str(local)], out, policy=fast_policy)
    assert summary.entities == 2
    kb = load_kb(built=out)
    assert kb.by_ticker("ZZZQ").name == "Zephyr Quartz"
    assert kb.by_ticker("AAPL") is not None  # the core KB is still there


def test_kb_files_are_validated_with_clear_errors(tmp_path):
    bad = tmp_path / "kb.toml"
    bad.write_text('[[entity]]\nid = "stock:X"\nkind = "company"\nname = "X"\ncolour = 1\n')
    with pytest.raises(KnowledgeBaseError, match=r"unknown field.*colour"):
        read_kb_toml(bad)
    bad.write_text('[[entity]]\nid = "stock:X"\nkind = "planet"\nname = "X"\n')
    with pytest.raises(KnowledgeBaseError, match="kind must be one of"):
        read_kb_toml(bad)
    bad.write_text('[[entity]]\nid = "X"\nkind = "company"\nname = "X"\n')
    with pytest.raises(KnowledgeBaseError, match="id must look like"):
        read_kb_toml(bad)
    bad.write_text(
        '[[entity]]\nid = "stock:X"\nkind = "company"\nname = "X"\n'
        '[[entity]]\nid = "stock:X"\nkind = "company"\nname = "Y"\n'
    )
    with pytest.raises(KnowledgeBaseError, match="defined twice"):
        read_kb_toml(bad)


def test_core_kb_loads_and_covers_the_essentials():
    kb = load_kb(built=None)
    for ticker in ("SPY", "IWM", "QQQ", "ARKK", "GLD", "TLT", "KRE", "COIN", "GME", "NVDA"):
        assert kb.by_ticker(ticker) is not None, ticker
    kinds = {e.kind for e in kb}
    assert kinds == {"company", "fund", "index", "crypto", "commodity", "person"}
    powell = kb.get("person:jerome-powell")
    assert powell is not None and powell.role and powell.affiliation


# -- the corpus -----------------------------------------------------------------------------


def _corpus_with(tmp_path: Path, paragraphs: list[str]) -> Corpus:
    corpus = Corpus(tmp_path / "c.db")
    text = "\n\n".join(paragraphs)
    with corpus.transaction():
        corpus.db.execute(
            "INSERT INTO articles (id, title, text, published, date_source, fetched_at, "
            "updated_at, content_hash, title_hash, word_count, obtained, source) "
            "VALUES (1, 'Markets', ?, '2024-07-15T12:00:00Z', 'test', '', '', ?, '', 10, "
            "'file', 'test')",
            [text, content_hash(text)],
        )
        for position, paragraph in enumerate(paragraphs):
            corpus.db.execute(
                "INSERT INTO paragraphs (article_id, position, text) VALUES (1, ?, ?)",
                [position, paragraph],
            )
    return corpus


def test_link_corpus_stores_mentions_and_is_incremental(tmp_path, linker):
    corpus = _corpus_with(
        tmp_path,
        [
            "Coinbase Global (COIN) jumped, said Dana Whitcombe, strategist at Osprey Hill.",
            "Whitcombe also likes the iShares Russell 2000 ETF.",
        ],
    )
    first = link_corpus(corpus, linker, progress=False)
    assert first.articles == 1 and first.mentions >= 5
    rows = corpus.db.execute(
        'SELECT paragraph, start, "end", text, entity_id FROM mentions ORDER BY paragraph, start'
    ).fetchall()
    assert (0, 0, 15, "Coinbase Global", "stock:COIN") in rows
    assert (1, 0, 9, "Whitcombe", "local:1:dana-whitcombe") in rows
    local = corpus.db.execute(
        "SELECT name, role, affiliation, article_id FROM entities WHERE origin = 'local'"
    ).fetchall()
    assert local == [("Dana Whitcombe", "strategist", "Osprey Hill", 1)]
    again = link_corpus(corpus, linker, progress=False)
    assert (again.articles, again.skipped) == (0, 1)
    assert corpus.count("mentions") == len(rows)


def test_top_entities_per_theme_and_period(tmp_path, linker):
    corpus = _corpus_with(tmp_path, ["Coinbase (COIN) and Tesla (TSLA) rose; Coinbase led."])
    link_corpus(corpus, linker, progress=False)
    corpus.apply_schema(
        "CREATE TABLE article_themes (article_id INTEGER, theme TEXT, score REAL, "
        "carries INTEGER, paragraphs_over INTEGER, paragraphs INTEGER)"
    )
    corpus.db.execute("INSERT INTO article_themes VALUES (1, 'trump_trade', 0.9, 1, 1, 1)")
    top = top_entities(corpus, "trump_trade", since="2024-07-01", until="2024-08-01")
    assert [(t.ticker, t.articles, t.mentions) for t in top] == [("COIN", 1, 3), ("TSLA", 1, 2)]
    assert top_entities(corpus, "trump_trade", since="2024-08-01") == []


def test_entities_command_reads_stdin(tmp_path):
    line = json.dumps({"id": 7, "text": "Coinbase Global (COIN) rose as Jerome Powell spoke."})
    result = CliRunner().invoke(
        cli, ["entities", "-", "--built-kb", str(tmp_path / "none.jsonl")], input=line + "\n"
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["id"] == 7
    tickers = {e["text"]: e["ticker"] for e in row["entities"]}
    assert tickers["Coinbase Global"] == "COIN" and tickers["Jerome Powell"] is None


def test_kb_build_and_lookup_commands(tmp_path):
    listing = tmp_path / "listing.csv"
    listing.write_text("Symbol,Company Name\nQQZX,Quillfeather Robotics Inc.\n")
    out = tmp_path / "kb.jsonl"
    runner = CliRunner()
    result = runner.invoke(cli, ["kb", "build", "--from", str(listing), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 entities written" in result.output
    result = runner.invoke(cli, ["kb", "lookup", "Quillfeather Robotics", "--built-kb", str(out)])
    assert result.exit_code == 0 and "QQZX" in result.output
    result = runner.invoke(cli, ["kb", "build", "--from", str(tmp_path / "missing.csv")])
    assert result.exit_code != 0 and "no listing file" in str(result.exception)


def test_two_processes_link_exactly_as_one(linker, nlp):
    articles = [
        ("a", ["Coinbase Global (COIN) rose, said Dana Whitcombe, strategist at Osprey Hill."]),
        ("empty", []),
        ("b", ["Whitcombe is away.", "Jerome Powell spoke; Target shares rose and $TSLA fell."]),
        ("c", ["Nothing to see."] * 40),
    ] * 20
    parallel = EntityLinker(linker.kb, nlp=nlp, processes=2)
    assert list(parallel.link_articles(articles, batch_size=8)) == list(
        linker.link_articles(articles, batch_size=8)
    )
