"""Turn a fetched article page (bytes or text) into its body text and metadata fields."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import charset_normalizer
import trafilatura
from lxml import etree
from lxml import html as lxml_html
from trafilatura.utils import load_html
from trafilatura.xml import xmltotxt

from narratives.dates import parse_date
from narratives.errors import DateError, ExtractionError
from narratives.text import WORD, clean_text, word_count
from narratives.urls import is_http_url


@dataclass(frozen=True)
class ExtractedPage:
    """One article page as extracted: `text` holds paragraphs separated by one blank line."""

    title: str | None
    text: str
    author: str | None
    published_raw: str | None
    published: datetime | None
    site_name: str | None
    language: str | None
    canonical_url: str | None
    description: str | None
    paywalled: bool


# A page thinner than this is a stub, a teaser or an error page rather than an article.
MIN_ARTICLE_WORDS = 40
# Paywall wording also sits, hidden, on pages that show the whole article to everyone; it only
# marks a teaser when the visible body is as short as a teaser is.
PAYWALL_MAX_WORDS = 200

# -- decoding -----------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-z0-9_.:\-]+)""", re.IGNORECASE)
_SCRIPT_NEUTRAL_BLOCKS = ("Latin", "Punctuation", "Symbols", "Forms", "Specials", "Control")
# Browsers read these labels as windows-1252 (WHATWG Encoding), and so do publishers who write them.
_WINDOWS_1252_ALIASES = {"latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1", "us-ascii", "ascii"}


def decode_html(body: bytes, declared_charset: str | None = None) -> str:
    """Decode page bytes: BOM, valid UTF-8, the declared or `<meta>` charset, then a guess.

    Valid multi-byte UTF-8 almost never happens by accident, so it wins over a declared charset
    (servers often say ISO-8859-1 for UTF-8 pages). A declared charset that is unknown or does not
    fit the bytes is skipped; the last resort is windows-1252 with replacement characters.
    """
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    meta = _META_CHARSET.search(body[:4096])
    for label in (declared_charset, meta.group(1).decode("ascii") if meta else None):
        encoding = _codec_name(label)
        if encoding is None or encoding == "utf-8":
            continue  # utf-8 already failed on these bytes
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    # The detector tells scripts apart well (Cyrillic, Greek, CJK) but not the Latin code pages
    # from each other; among those, windows-1252 is by far the most common on the web.
    guess = charset_normalizer.from_bytes(body).best()
    if guess is not None and any(_is_script(alphabet) for alphabet in guess.alphabets):
        return str(guess)
    return body.decode("cp1252", errors="replace")


def _is_script(alphabet: str) -> bool:
    """Whether a Unicode block name from charset_normalizer is a non-Latin writing system."""
    return not any(word in alphabet for word in _SCRIPT_NEUTRAL_BLOCKS)


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _WINDOWS_1252_ALIASES:
        return "cp1252"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # A <meta> claiming UTF-16/32 on bytes we can read as ASCII is a copy-paste error.
    return None if name.startswith(("utf-16", "utf-32")) else name


# -- page metadata --------------------------------------------------------------------------

_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "askpublicnewsarticle",
    "blogposting",
    "liveblogposting",
    "socialmediaposting",
    "scholarlyarticle",
    "techarticle",
    "report",
}
# Meta tags that carry the first publication time, most trusted first.
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "article:published",
    "datepublished",
    "parsely-pub-date",
    "sailthru.date",
    "publish-date",
    "publish_date",
    "publishdate",
    "pubdate",
    "article.published",
    "original-publish-date",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.issued",
    "dc.date",
    "date",
)
_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}")
_SAME_DAY_EARLIEST = timedelta(hours=-14)
_SAME_DAY_LATEST = timedelta(hours=38)
# "Jane Doe and John Roe" is two authors; a single name never contains " and ".
_AUTHOR_SPLIT = re.compile(r"\s*;\s*|\s+(?:and|&)\s+|\s*\|\s*")
_BYLINE_PREFIX = re.compile(r"^(?:by|von|par|por|di)\s+", re.IGNORECASE)


@dataclass
class _PageMeta:
    """What the page says about itself in <meta>, <link> and JSON-LD, before text extraction."""

    meta: dict[str, str]
    jsonld: list[dict[str, Any]]
    canonical: str | None
    lang: str | None
    title_tag: str | None


def _read_page_meta(tree: lxml_html.HtmlElement) -> _PageMeta:
    meta: dict[str, str] = {}
    for element in tree.iter("meta"):
        key = element.get("property") or element.get("name") or element.get("itemprop")
        value = element.get("content")
        if key is None:
            if element.get("http-equiv", "").lower() == "content-language" and value:
                meta.setdefault("content-language", value.strip())
            continue
        if value is None:
            continue
        key = key.strip().lower()
        if value.strip():
            meta.setdefault(key, value.strip())
    for element in tree.xpath("//*[@itemprop='datePublished'][not(self::meta)]"):
        value = element.get("datetime") or element.get("content") or element.text_content()
        if value and value.strip():
            meta.setdefault("datepublished", value.strip())
    canonical = None
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            canonical = link.get("href").strip()
            break
    lang = tree.get("lang") or tree.get("xml:lang")
    titles = tree.xpath("//head/title | //title")
    title_tag = titles[0].text_content() if titles else None
    return _PageMeta(meta, list(_jsonld_objects(tree)), canonical, lang, title_tag)


def _jsonld_objects(tree: lxml_html.HtmlElement) -> Iterator[dict[str, Any]]:
    """Top-level JSON-LD objects, with @graph members and main entities unfolded."""
    for script in tree.xpath("//script[@type='application/ld+json']"):
        raw = (script.text or "").strip()
        # Some CMSs wrap the JSON in an HTML comment or CDATA markers.
        raw = re.sub(r"^\s*(?://)?\s*(?:<!--|<!\[CDATA\[)|(?://)?\s*(?:-->|\]\]>)\s*$", "", raw)
        try:
            data = json.loads(raw, strict=False)
        except (ValueError, RecursionError):  # RecursionError: `[[[[…` nested past the stack
            continue
        yield from _unfold_jsonld(data, depth=0)


def _unfold_jsonld(data: Any, depth: int) -> Iterator[dict[str, Any]]:
    if depth > 3:
        return
    if isinstance(data, list):
        for item in data:
            yield from _unfold_jsonld(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity"):
            if key in data:
                yield from _unfold_jsonld(data[key], depth + 1)


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.lower() for k in kinds if isinstance(k, str)}


def _main_article(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    articles = [obj for obj in objects if _types(obj) & _ARTICLE_TYPES]
    if articles:
        return articles[0]
    # Some publishers describe the story only as a WebPage with dates and authors.
    pages = [obj for obj in objects if "datePublished" in obj]
    return pages[0] if pages else None


def _jsonld_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        return _jsonld_text(value.get("name") or value.get("@value"))
    if isinstance(value, list) and value:
        return _jsonld_text(value[0])
    return None


def _jsonld_names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [name for item in value for name in _jsonld_names(item)]
    if isinstance(value, dict):
        return _jsonld_names(value.get("name"))
    if isinstance(value, str) and value.strip() and not value.strip().startswith("http"):
        return [value.strip()]
    return []


# No `<` inside a tag, so a `<a<a<a…` flood is searched in linear, not quadratic, time.
_MARKUP = re.compile(r"<[a-zA-Z!/][^<>]*>")


def _plain(text: str | None) -> str | None:
    """One line of plain text: markup (even a <script> smuggled into a title) becomes text-free."""
    if text is None:
        return None
    if _MARKUP.search(text):
        try:
            fragment = lxml_html.fragment_fromstring(text, create_parent="div")
        except etree.ParserError:
            pass  # not markup after all, e.g. "a <b> c"
        else:
            for element in fragment.xpath(".//script | .//style"):
                element.drop_tree()
            text = fragment.text_content()
    text = " ".join(text.split())
    return text or None


# A `<` that another `<` (or the end) follows before any `>`: it opens no tag.
_STRAY_LT = re.compile(r"<(?=[^<>]*(?:<|$))")


def _defuse_tag_floods(tree: lxml_html.HtmlElement) -> None:
    """Drop the stray `<`s of meta contents and JSON-LD blocks, once this module has read them.

    trafilatura strips tags from those with `<[^>]*>`, which rescans to the end from every `<`
    of a `<a<a<a…` flood: a hostile page of a few MB would stall it for hours.
    """
    for element in tree.xpath("//meta[@content]"):
        content = element.get("content")
        if "<" in content:
            element.set("content", _STRAY_LT.sub("", content))
    for element in tree.xpath("//script[@type='application/ld+json']"):
        if element.text and "<" in element.text:
            element.text = _STRAY_LT.sub("", element.text)


def _http_url(href: str | None, *, base: str | None) -> str | None:
    """`href` made absolute against `base`, if that gives a well-formed http(s) URL; else None
    (relative with no page URL, another scheme, or a malformed host or port)."""
    if not href:
        return None
    try:
        absolute = urljoin(base, href) if base else href
    except ValueError:  # urllib on an IPv6 bracket that does not close: "http://[::1"
        return None
    return absolute if is_http_url(absolute) else None


def _join_authors(names: list[str]) -> str | None:
    authors: dict[str, str] = {}
    for name in names:
        for part in _AUTHOR_SPLIT.split(_plain(name) or ""):
            part = _BYLINE_PREFIX.sub("", part).strip(" ,;")
            # "Jane Doe" and a "jane-doe" slug of the same person count once.
            if part and not part.startswith("http"):
                authors.setdefault(_comparable(part), part)
    return "; ".join(authors.values()) or None


def _pick_published(candidates: list[str]) -> tuple[str | None, datetime | None]:
    """The first plausible date string; when it gives only a day, a later candidate that gives
    the time of day on that same day is preferred."""
    plausible: list[tuple[str, datetime]] = []
    for raw in candidates:
        try:
            plausible.append((raw, parse_date(raw)))
        except DateError:
            continue
    if not plausible:
        return (candidates[0], None) if candidates else (None, None)
    first_raw, first = plausible[0]
    if not _TIME_OF_DAY.search(first_raw):
        # A day-only date reads as midnight UTC; that day's local times lie within this window.
        for raw, moment in plausible[1:]:
            if _TIME_OF_DAY.search(raw) and _SAME_DAY_EARLIEST <= moment - first < _SAME_DAY_LATEST:
                return raw, moment
    return first_raw, first


def _language(page: _PageMeta, article: dict[str, Any] | None) -> str | None:
    for value in (
        page.lang,
        page.meta.get("content-language"),
        page.meta.get("og:locale"),
        _jsonld_text(article.get("inLanguage")) if article else None,
    ):
        if value:
            code = re.split(r"[-_,;\s]", value.strip())[0].lower()
            if len(code) == 2 and code.isalpha():
                return code
    return None


# -- body text ------------------------------------------------------------------------------

_TRAFILATURA_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
}
# Precision mode sometimes drops the whole story on pages with odd markup; when it keeps less than
# this share of what balanced mode finds, it has lost the story, not trimmed furniture, and the
# balanced extraction is used instead.
_PRECISION_MIN_SHARE = 0.2
_SPACES = re.compile(r"\s+")
# Lines recovered from outside trafilatura's chosen text must read like reporting: sentences.
_PROSE_MIN_WORDS = 10
_SIBLING_SEARCH_LEVELS = 4
_FURNITURE_TAGS = {"form", "aside", "figure", "figcaption", "nav", "footer", "button"}
_FURNITURE_NAMES = re.compile(
    r"newsletter|sign-?up|subscri|promo|related|recirc|comment|share|social|advert|\bads?\b|caption",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?:\"”’)]$")

# Promotions, cross-links and sharing prompts that publishers put between or after paragraphs.
# Checked only on short paragraphs, so a sentence of reporting that happens to start alike stays.
_BOILERPLATE = re.compile(
    r"""^(?:
        (?:read|see|watch|listen)\s+(?:more|also|next)\b
      | related(?:\s+(?:articles?|stories|coverage|content|reading|posts?|links?))?\s*:
      | more\s*:\s*$
      | also\s+(?:read|see|on)\b
      | (?:don'?t|do\s+not)\s+miss\b
      | you\s+(?:may|might)\s+also\s+(?:like|enjoy|be\s+interested)
      | (?:most\s+(?:read|popular|viewed)|trending|recommended)\b.{0,40}$
      | (?:sign\s+up|subscribe)\b.{0,80}\b(?:newsletters?|inbox|alerts?)\b
      | get\s+the\s+latest\b.{0,60}\b(?:newsletters?|inbox)\b
      | follow\s+(?:us|him|her|them|[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,5})\s+on\s+
            (?:twitter|facebook|instagram|linkedin|x|threads|bluesky|youtube)\b
      | (?:like|liked|enjoy|enjoyed)\s+this\s+(?:story|article)\?
      | share\s+(?:this|on)\b.{0,40}$
      | (?:advertisement|sponsored(?:\s+content)?|comments?|tags?|filed\s+under)\s*:?\s*.{0,3}$
      | this\s+(?:article|story|content|material|post)\s+is\s+(?:provided\s+)?
            for\s+(?:general\s+)?information(?:al)?\s+(?:purposes\s+)?only\b
      | nothing\s+in\s+this\s+(?:article|story|content|material|post)\s+
            (?:is|constitutes)\s+(?:investment|financial)\s+advice\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_BOILERPLATE_MAX_WORDS = 40


def _body_text(tree: lxml_html.HtmlElement, url: str | None) -> tuple[list[str], Any]:
    """Body lines of the page, and trafilatura's metadata document (None when it found no text).

    Precision mode gives the cleanest text but drops link-heavy paragraphs and, on some layouts,
    the whole story; balanced mode keeps those at the price of more page furniture. So the
    precise lines are the skeleton, and prose lines that only balanced mode found are put back
    where they stand between two of them. Stories split over several containers of the same
    kind (the layout puts ads between them) are joined up the same way.
    """
    precise = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, favor_precision=True, **_TRAFILATURA_OPTIONS
    )
    balanced = trafilatura.bare_extraction(tree, url=url, **_TRAFILATURA_OPTIONS)
    precise_lines = _document_lines(precise)
    balanced_lines = _document_lines(balanced)
    if word_count(" ".join(precise_lines)) < _PRECISION_MIN_SHARE * word_count(
        " ".join(balanced_lines)
    ):
        lines = balanced_lines
    else:
        lines = _merge_missing(precise_lines, balanced_lines, tail=False)
    lines = _merge_missing(lines, _sibling_container_lines(tree, lines), tail=True)
    return lines, precise


def _document_lines(document: Any) -> list[str]:
    """One line per block of trafilatura's body tree (paragraph, heading, list item, table row,
    explicit line break); newlines that were only source formatting inside a block are not."""
    if document is None or document.body is None:
        return []
    body = deepcopy(document.body)
    for element in body.iter():
        if element.text:
            element.text = _SPACES.sub(" ", element.text)
        if element.tail:
            element.tail = _SPACES.sub(" ", element.tail)
    text = xmltotxt(body, include_formatting=False)
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = WORD.findall(text.lower())
    return {tuple(words[i : i + 4]) for i in range(max(1, len(words) - 3))}


def _is_prose(line: str) -> bool:
    return word_count(line) >= _PROSE_MIN_WORDS and bool(_SENTENCE_END.search(line))


def _merge_missing(kept: list[str], candidates: list[str], *, tail: bool) -> list[str]:
    """Add the prose lines of `candidates` (in page order) that `kept` lacks, each after the kept
    line it follows on the page; lines after the last shared one are added only when `tail`."""
    if not kept or not candidates:
        return kept
    kept_shingles = [_shingles(line) for line in kept]
    known = set().union(*kept_shingles)
    inserts: dict[int, list[str]] = {}
    anchor: int | None = None
    pending: list[str] = []
    for line in candidates:
        shingles = _shingles(line)
        shared = len(shingles & known) / len(shingles)
        if shared >= 0.5:
            if anchor is not None:
                inserts.setdefault(anchor, []).extend(pending)
            pending = []
            anchor = max(range(len(kept)), key=lambda i: len(shingles & kept_shingles[i]))
        elif anchor is not None and shared <= 0.2 and _is_prose(line):
            pending.append(line)
            known |= shingles  # a repeated copy of the same line is not added twice
    if tail and anchor is not None:
        inserts.setdefault(anchor, []).extend(pending)
    merged = []
    for index, line in enumerate(kept):
        merged.append(line)
        merged.extend(inserts.pop(index, []))
    return merged


def _sibling_container_lines(tree: lxml_html.HtmlElement, lines: list[str]) -> list[str]:
    """Paragraphs, in page order, of the containers shaped like the one holding the story's
    opening (same tag and class) that sit in the same part of the page; empty if it stands alone.
    """
    opening = {line for line in lines[:5] if word_count(line) >= _PROSE_MIN_WORDS}
    container = None
    for paragraph in tree.iter("p"):
        if " ".join(paragraph.text_content().split()) in opening:
            container = paragraph.getparent()
            break
    if container is None or not container.get("class"):
        return []
    # Only a few levels up: further out, a shared widget class also matches comments and promos.
    region = container
    for _ in range(_SIBLING_SEARCH_LEVELS):
        region = region.getparent() if region.getparent() is not None else region
    siblings = [
        element
        for element in region.iter(container.tag)
        if element.get("class") == container.get("class")
    ]
    if len(siblings) < 2:
        return []
    return [
        " ".join(paragraph.text_content().split())
        for element in siblings
        for paragraph in element.iter("p")
        if not _in_page_furniture(paragraph, element)
    ]


def _in_page_furniture(element: lxml_html.HtmlElement, container: lxml_html.HtmlElement) -> bool:
    """Whether `element` sits in a sign-up box, promo, caption or the like inside `container`."""
    while element is not None and element is not container:
        if element.tag in _FURNITURE_TAGS:
            return True
        if _FURNITURE_NAMES.search(f"{element.get('class', '')} {element.get('id', '')}"):
            return True
        element = element.getparent()
    return False


def _clean_paragraphs(lines: list[str], title: str | None) -> list[str]:
    paragraphs: list[str] = []
    title_key = _comparable(title) if title else None
    for line in lines:
        if not WORD.search(line):
            continue  # table rules, bullets and separators with no words
        if not paragraphs and title_key and _comparable(line) == title_key:
            continue  # the headline repeated as the first block
        if word_count(line) <= _BOILERPLATE_MAX_WORDS and (
            _BOILERPLATE.match(line) or _PAYWALL_MARKERS.search(line)
        ):
            continue
        if paragraphs and paragraphs[-1] == line:
            continue
        paragraphs.append(line)
    return paragraphs


def _comparable(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


# -- paywalls ---------------------------------------------------------------------------------

_PAYWALL_MARKERS = re.compile(
    r"""subscribe\s+(?:now\s+)?to\s+(?:continue|keep)\s+reading
      | (?:subscribe|sign\s+in|log\s+in|register)\s+to\s+(?:read|unlock|access)\s+
            (?:the\s+|this\s+)?(?:full\s+|rest\s+of\s+(?:the\s+|this\s+)?)?(?:article|story)
      | (?:this\s+(?:article|story|content)\s+is\s+)?(?:only\s+)?(?:available\s+)?
            (?:exclusively\s+)?(?:for|to)\s+(?:paying\s+|premium\s+)?subscribers\s+only
      | this\s+(?:article|story|content)\s+is\s+(?:only\s+)?(?:available\s+)?(?:exclusively\s+)?
            (?:for|to)\s+(?:paying\s+|premium\s+)?(?:subscribers|members)
      | subscribers?[-\s]only\s+(?:article|story|content)
      | (?:already\s+a\s+subscriber|continue\s+reading\s+with\s+a\s+subscription)
      | you(?:'|’)?ve\s+(?:reached|used)\s+(?:your|all\s+(?:of\s+)?your)\s+
            (?:free\s+|monthly\s+)?(?:article\s+)?(?:limit|free\s+articles)
      | to\s+continue\s+reading,?\s+(?:please\s+)?(?:subscribe|sign\s+in|log\s+in|register)
      | create\s+a\s+free\s+account\s+to\s+(?:continue|keep)\s+reading
      | unlock\s+(?:this|the\s+full)\s+(?:article|story)
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _has_paywall_marker(tree: lxml_html.HtmlElement, article: dict[str, Any] | None) -> bool:
    if article is not None and str(article.get("isAccessibleForFree", "")).lower() == "false":
        return True
    visible = tree.xpath(
        "//body//text()[not(ancestor::script or ancestor::style or ancestor::noscript"
        " or ancestor::template)]"
    )
    return bool(_PAYWALL_MARKERS.search(" ".join(" ".join(visible).split())))


def _page_is_teaser(text: str, paywall_marker: bool) -> bool:
    words = word_count(text)
    return words < MIN_ARTICLE_WORDS or (paywall_marker and words < PAYWALL_MAX_WORDS)


def looks_like_teaser(page: ExtractedPage, summary: str | None = None) -> bool:
    """Whether `page.text` is too thin to stand for the article, so the feed's text should stay.

    The rule: True when the body has fewer than `MIN_ARTICLE_WORDS` (40) words; or the page carries
    paywall wording ("subscribe to continue reading", "this article is for subscribers",
    JSON-LD `isAccessibleForFree: false`, …) and its body has fewer than `PAYWALL_MAX_WORDS` (200)
    words; or a feed `summary` is given and the body has no more words than it. The first two
    parts depend on the page alone and are what `ExtractedPage.paywalled` records.
    """
    if page.paywalled or word_count(page.text) < MIN_ARTICLE_WORDS:
        return True
    return summary is not None and word_count(page.text) <= word_count(_plain(summary) or "")


# -- the stage --------------------------------------------------------------------------------


def extract_page(
    html: str | bytes, *, url: str | None = None, declared_charset: str | None = None
) -> ExtractedPage:
    """Extract the article body and metadata from one page; raise `ExtractionError` without body.

    `declared_charset` is the charset from the HTTP Content-Type header, when there was one.
    """
    markup = decode_html(html, declared_charset) if isinstance(html, bytes) else html
    where = f" at {url}" if url else ""
    if not markup.strip():
        raise ExtractionError(f"empty page{where}: nothing to extract")
    # trafilatura rejects a lone fragment as not-quite-HTML; a wrapped one it reads.
    tree = load_html(markup)
    if tree is None and _MARKUP.search(markup):
        tree = load_html(f"<html><body>{markup}</body></html>")
    if tree is None:
        raise ExtractionError(f"page{where} is not parseable HTML")
    page = _read_page_meta(tree)
    article = _main_article(page.jsonld)
    # Script text must not leak into the title or body (trafilatura reads an <h1> as it stands);
    # JSON-LD stays for trafilatura's own metadata reading.
    for element in tree.xpath("//script[not(@type='application/ld+json')] | //style"):
        element.drop_tree()
    _defuse_tag_floods(tree)
    lines, document = _body_text(tree, url)

    meta = page.meta
    title = _plain(
        (_jsonld_text(article.get("headline")) if article else None)
        or meta.get("og:title")
        or (document.title if document is not None else None)
        or page.title_tag
    )
    paragraphs = _clean_paragraphs(lines, title)
    embedded_body = _jsonld_text(article.get("articleBody")) if article else None
    if embedded_body and word_count(" ".join(paragraphs)) < min(
        MIN_ARTICLE_WORDS, word_count(embedded_body)
    ):
        # Script-built pages often carry the whole story only in their JSON-LD.
        blocks = [_plain(block) for block in clean_text(embedded_body).split("\n\n")]
        paragraphs = _clean_paragraphs([block for block in blocks if block], title)
    paywall_marker = _has_paywall_marker(tree, article)
    has_prose = any(word_count(paragraph) >= _PROSE_MIN_WORDS for paragraph in paragraphs)
    # Menus, captions and "enable JavaScript" notices are not an article; a sentence or two above
    # a paywall notice is a teaser, which callers want to see as such.
    if not paragraphs or not (has_prose or paywall_marker):
        found = f" (only {word_count(' '.join(paragraphs))} words of menus or captions)"
        raise ExtractionError(
            f"no article text found{where}{found if paragraphs else ''}: the page may be an "
            "index, a video or built by scripts; open it in a browser to check, or skip it"
        )
    text = "\n\n".join(paragraphs)

    date_candidates = [_jsonld_text(article.get("datePublished")) if article else None]
    date_candidates += [meta.get(name) for name in _PUBLISHED_META]
    date_candidates.append(_jsonld_text(article.get("dateCreated")) if article else None)
    # htmldate's guess from the whole page, by way of trafilatura: a day without time of day.
    date_candidates.append(document.date if document is not None else None)
    published_raw, published = _pick_published([d for d in date_candidates if d])

    authors = _jsonld_names(article.get("author")) if article else []
    if not authors and document is not None and document.author:
        authors = document.author.split(";")
    canonical = _http_url(page.canonical or meta.get("og:url"), base=url)
    site_name = (
        meta.get("og:site_name")
        or (_jsonld_text(article.get("publisher")) if article else None)
        or (document.sitename if document is not None else None)
    )
    description = (
        meta.get("og:description")
        or meta.get("description")
        or (_jsonld_text(article.get("description")) if article else None)
    )
    return ExtractedPage(
        title=title,
        text=text,
        author=_join_authors(authors),
        published_raw=published_raw,
        published=published,
        site_name=_plain(site_name),
        language=_language(page, article),
        canonical_url=canonical,
        description=_plain(description),
        paywalled=_page_is_teaser(text, paywall_marker),
    )
