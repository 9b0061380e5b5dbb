"""Canonical URLs and the dedup keys that make one article one row, however it was linked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    """True for absolute http(s) URLs: the only schemes the crawler will fetch."""
    parts = urlsplit(text.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """The URL a reader should be sent to: tracking parameters and fragment dropped.

    Scheme and host are lower-cased; credentials, default ports and empty queries removed; the
    remaining query parameters sorted. The result still points at the same page.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.port and DEFAULT_PORTS.get(scheme) != parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = sorted((k, v) for k, v in query if not is_tracking_param(k))
    return urlunsplit((scheme, host, path, urlencode(kept), ""))


def url_key(url: str) -> str:
    """A dedup key under which the http/https, www/mobile and AMP variants of a URL collide."""
    parts = urlsplit(canonicalize(url))
    host = parts.netloc
    for prefix in _MOBILE_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    path = _AMP_PATH.sub("", parts.path) or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _AMP_PARAMS
    ]
    key = f"{host}{path}"
    if query:
        key += "?" + urlencode(query)
    return key


def host_of(url: str) -> str:
    """Lower-cased host name without a leading `www.`."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def same_site(a: str, b: str) -> bool:
    """True when two URLs share a host up to `www.`/mobile prefixes, or one is a subdomain."""
    ha, hb = url_key(a).split("/", 1)[0], url_key(b).split("/", 1)[0]
    return ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha)
