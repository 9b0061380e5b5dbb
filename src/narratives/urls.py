"""Canonical URLs and the dedup keys that make one article one row, however it was linked."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say how a reader arrived, never which article it is.
TRACKING_PARAMS = frozenset(
    {
        "mod",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "fbclid",
        "gclid",
        "dclid",
        "gclsrc",
        "msclkid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "cmpid",
        "cmp",
        "icid",
        "ncid",
        "ocid",
        "taid",
        "yptr",
        "soc_src",
        "soc_trk",
        "smid",
        "smtyp",
        "mbid",
        "sr_share",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "s_cid",
        "xtor",
        "rss",
        "feedtype",
        "cid_source",
        "__twitter_impression",
        "share",
        "via",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "trk_", "at_")

# Parameters and path pieces that select the AMP/mobile rendering of the same article.
_AMP_PARAMS = frozenset({"amp", "outputtype", "output", "amp_js_v", "usqp", "_js_v"})
_MOBILE_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.", "amp-")
_AMP_PATH = re.compile(r"(^/amp(?=/))|(/amp/?$)|(\.amp(?=\.html?$))|(/amp(?=/))", re.IGNORECASE)

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_http_url(text: str) -> bool:
    """True for absolute http(s) URLs: the only schemes the crawler will fetch.

    A URL whose port is not a number in 0-65535, or whose IPv6 brackets do not close, cannot be
    fetched, so it is not one: False, not the ValueError urllib raises for it.
    """
    parts = _split(text)
    if parts is None or _port(parts) is None:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """The URL a reader should be sent to: tracking parameters and fragment dropped.

    Scheme and host are lower-cased; credentials, default ports and empty queries removed; the
    remaining query parameters sorted. The result still points at the same page. Never raises:
    text urllib cannot split comes back stripped but otherwise as written, and a port that is
    not a valid number is kept as written (`is_http_url` rejects such URLs).
    """
    parts = _split(url)
    if parts is None:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # an IPv6 literal: `hostname` dropped the brackets the netloc needs
        host = f"[{host}]"
    port = _port(parts)
    if port is None:
        host = f"{host}:{_port_text(parts)}"
    elif port and DEFAULT_PORTS.get(scheme) != port:
        host = f"{host}:{port}"
    path = parts.path or "/"
    kept = sorted((k, v) for k, v in _query(parts.query) if not is_tracking_param(k))
    return urlunsplit((scheme, host, path, _encode(kept), ""))


def url_key(url: str) -> str:
    """A dedup key under which the http/https, www/mobile and AMP variants of a URL collide."""
    parts = _split(canonicalize(url))
    if parts is None:  # canonicalize kept text urllib cannot split: it is its own key
        return canonicalize(url)
    host = parts.netloc
    for prefix in _MOBILE_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    path = _AMP_PATH.sub("", parts.path) or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    query = [(k, v) for k, v in _query(parts.query) if k.lower() not in _AMP_PARAMS]
    key = f"{host}{path}"
    if query:
        key += "?" + _encode(query)
    return key


def _split(url: str) -> SplitResult | None:
    """`urlsplit`, or None for text it refuses (an IPv6 bracket that does not close)."""
    try:
        return urlsplit(url.strip())
    except ValueError:
        return None


def _port(parts: SplitResult) -> int | None:
    """The port as a number, 0 when none is given, None when it is not a valid port."""
    try:
        return parts.port or 0
    except ValueError:  # out of range or not digits: "http://a:99999/", "http://a:xyz/"
        return None


def _port_text(parts: SplitResult) -> str:
    """The port as written after the host (and after an IPv6 literal's closing bracket)."""
    hostport = parts.netloc.rpartition("@")[2]
    return hostport.rpartition("]")[2].partition(":")[2]


# Query values are bytes in some encoding, usually UTF-8. Decoding with `surrogateescape` and
# encoding back the same way returns any other byte (a Latin-1 `%FC`) as it came, where the
# default `replace` would turn it into U+FFFD and give different pages one URL.
def _query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True, errors="surrogateescape")


def _encode(pairs: list[tuple[str, str]]) -> str:
    try:
        return urlencode(pairs, errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800") stands for no byte at all
        return urlencode(pairs, errors="surrogatepass")


def host_of(url: str) -> str:
    """Lower-cased host name without a leading `www.`; empty for text that is no URL."""
    parts = _split(url)
    host = (parts.hostname or "").lower() if parts else ""
    return host[4:] if host.startswith("www.") else host


def same_site(a: str, b: str) -> bool:
    """True when two URLs share a host up to `www.`/mobile prefixes, or one is a subdomain."""
    ha, hb = url_key(a).split("/", 1)[0], url_key(b).split("/", 1)[0]
    return ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha)
