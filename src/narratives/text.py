"""Plain-text hygiene shared by every source: invisible characters, whitespace, fingerprints."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

# Zero-width and bidi control characters that publishers sprinkle into text (often as
# anti-scraping marks); they split words for search and break content hashes.
# C0 control characters other than whitespace (NUL from a JSON "\u0000", backspace, escape)
# and DEL are as invisible; \t \n \r \v \f and \x1c-\x1f are spaces to str.split().
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n")
# No `<` inside a tag: `<[^>]*>` rescans to the end from every `<` of a `<<<<…` flood,
# quadratic time on hostile feed text.
_TAG = re.compile(r"<[^<>]*>")
# Chinese and Japanese do not put spaces between words: each ideograph or kana counts as one.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def clean_text(text: str) -> str:
    """NFC-normalise, drop invisible characters, collapse spaces, keep paragraph breaks.

    Paragraphs come back separated by exactly one blank line, the corpus's one convention.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():  # ASCII is already NFC and holds no invisible characters
        text = _INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    elif _CONTROL.search(text):  # but for control characters
        text = _CONTROL.sub("", text)
    paragraphs = _BLANK_LINES.split(text) if _BLANK_LINES.search(text) else text.split("\n")
    # str.split() splits on every Unicode space (no-break, thin, ideographic…) and newline.
    cleaned = (" ".join(p.split()) for p in paragraphs)
    return "\n\n".join(p for p in cleaned if p)


def clean_line(text: str | None) -> str | None:
    """A title, author or name on one line, or None when nothing is left."""
    if text is None:
        return None
    line = " ".join(_SPACES.sub(" ", _INVISIBLE.sub("", text)).split())
    return line or None


def html_to_text(fragment: str) -> str:
    """Text of a small HTML fragment such as a feed summary; block tags become paragraphs."""
    fragment = re.sub(r"(?i)<\s*(br|/p|/div|/li|/h\d)\b[^<>]*>", "\n\n", fragment)
    # Summaries are often escaped twice ("S&amp;amp;P"): unescape until stable.
    text = _TAG.sub(" ", _drop_code(fragment))
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = _TAG.sub(" ", _drop_code(unescaped))
    return clean_text(text)


_CODE_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)
_CODE_CLOSE = {
    "script": re.compile(r"</script\s*>", re.IGNORECASE),
    "style": re.compile(r"</style\s*>", re.IGNORECASE),
}


def _drop_code(fragment: str) -> str:
    """`fragment` without its <script> and <style> elements, contents and all: code is not text
    (a feed title "<script>alert(1)</script>Oil" is "Oil"). An unclosed one runs to the end."""
    start = _CODE_OPEN.search(fragment)
    if start is None:
        return fragment
    kept, position = [], 0
    while start is not None:
        kept.append(fragment[position : start.start()])
        close = _CODE_CLOSE[start.group(1).lower()].search(fragment, start.end())
        position = close.end() if close else len(fragment)
        start = _CODE_OPEN.search(fragment, position)
    kept.append(fragment[position:])
    return " ".join(kept)


def split_paragraphs(text: str) -> list[tuple[int, str]]:
    """(position, paragraph) pairs; positions index `text.split("\\n\\n")`, empties skipped.

    Positions match the `<article id>#p<n>` paragraph ids of labelled data.
    """
    return [(i, p.strip()) for i, p in enumerate(text.split("\n\n")) if p.strip()]


def word_count(text: str) -> int:
    return len(WORD.findall(text))


def content_hash(text: str) -> str:
    """Fingerprint of an article body that ignores case, punctuation, spacing and markup noise.

    Two copies of one story (syndicated, re-crawled, AMP) hash alike; any edit to the words
    changes it.
    """
    words = WORD.findall(unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


def clip(text: str | None, width: int, *, keep_end: bool = False) -> str:
    """`text` cut to `width` characters with an ellipsis; paths and URLs read best by their end."""
    text = text or ""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"
