"""The one module that touches the network: polite, bounded HTTP GETs of feeds and pages."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from narratives import __version__
from narratives.errors import FetchError

log = logging.getLogger(__name__)

USER_AGENT = (
    f"narratives/{__version__} (+https://github.com/narratives-dev/narratives; "
    "market-narrative research crawler)"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MiB = 1024 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how defensively to fetch. The defaults suit crawling publishers."""

    user_agent: str = USER_AGENT
    min_delay: float = 1.0  # seconds between two requests to one host
    per_host_concurrency: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # a whole response, however slowly it drips in
    max_bytes: int = 10 * MiB  # on the wire
    max_decompressed_bytes: int = 25 * MiB
    retries: int = 3
    backoff: float = 1.0  # first retry waits about this long, then doubles
    max_retry_after: float = 120.0  # a longer Retry-After gives up instead of stalling the run
    max_redirects: int = 5
    respect_robots: bool = True
    max_crawl_delay: float = 30.0  # cap on a robots.txt Crawl-delay
    allow_private: bool = False  # fetch loopback / private / link-local addresses
    # Networks fetched even though not public (your intranet), e.g. ("10.1.0.0/16",).
    allow_networks: tuple[str, ...] = ()

    def allows_address(self, address: str) -> bool:
        """Whether an IP address may be connected to: public, or allowed by this policy."""
        if self.allow_private:
            return True
        ip = _ip(address)
        if any(ip in ipaddress.ip_network(net, strict=False) for net in self.allow_networks):
            return True
        return not _is_private(address)


@dataclass
class Response:
    """A completed fetch: final URL after redirects, status, headers and decoded body bytes."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""
    redirects: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


class _HostGate:
    """Per-host minimum delay between request starts and a cap on requests in flight."""

    def __init__(self, concurrency: int) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.lock = threading.Lock()
        self.next_start = 0.0

    def enter(self, delay: float, sleep: Callable[[float], None]) -> None:
        self.slots.acquire()
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + delay
        if start > now:
            sleep(start - now)

    def leave(self) -> None:
        self.slots.release()


class Fetcher:
    """Fetches http(s) URLs with robots.txt, per-host pacing, retries, and size/time caps.

    Thread-safe: ingestion fetches several pages at once from a thread pool; the per-host gate
    keeps each publisher at `per_host_concurrency` requests and `min_delay` seconds apart.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self._sleep = sleep
        self._client = httpx.Client(
            headers={
                "User-Agent": self.policy.user_agent,
                # Decoded here, not by httpx, so the decompressed size can be capped.
                "Accept-Encoding": "gzip, deflate",
            },
            timeout=httpx.Timeout(
                connect=self.policy.connect_timeout,
                read=self.policy.read_timeout,
                write=self.policy.read_timeout,
                pool=self.policy.total_timeout,
            ),
            follow_redirects=False,
            transport=transport or _GuardedTransport(self.policy),
            trust_env=False,
        )
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, RobotFileParser | FetchError] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._crawl_delays: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- public API --------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "*/*",
    ) -> Response:
        """GET `url`, following redirects, and return the response or raise `FetchError`.

        A 304 answer to a conditional request (`etag` / `last_modified`) returns a `Response`
        whose `not_modified` is True and whose body is empty.
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: list[str] = []
        current = url
        while True:
            self._check_allowed(current)
            if self.policy.respect_robots and not self.robots_allows(current):
                raise FetchError("robots_disallowed", f"robots.txt disallows {current}")
            response = self._get_with_retries(current, headers)
            if response.status not in REDIRECT_STATUSES:
                response.redirects = seen
                return response
            location = response.headers.get("location")
            if not location:
                raise FetchError(
                    "bad_redirect", f"{current} redirects without a Location", status=302
                )
            seen.append(current)
            target = urljoin(current, location.strip())
            if target in seen or target == current:
                raise FetchError("redirect_loop", f"redirect loop at {current} -> {target}")
            if len(seen) > self.policy.max_redirects:
                raise FetchError(
                    "too_many_redirects",
                    f"more than {self.policy.max_redirects} redirects from {url}",
                )
            current = target

    def robots_allows(self, url: str) -> bool:
        """Whether robots.txt of `url`'s host lets our user agent fetch it (cached per host).

        Raises the `FetchError` that kept robots.txt from being read when the host is down or
        refuses it with a server error: RFC 9309 says to crawl nothing then.
        """
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            origin_lock = self._robots_locks.setdefault(origin, threading.Lock())
        # One fetch of robots.txt per host, even when several pages of it start at once.
        with origin_lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._robots[origin] = self._load_robots(origin)
        if isinstance(rules, FetchError):
            raise FetchError(rules.reason, f"robots.txt unavailable, not crawling: {rules}")
        return rules.can_fetch(self.policy.user_agent, url)

    # -- internals ---------------------------------------------------------------------------

    def _check_allowed(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FetchError("bad_scheme", f"only http(s) URLs are fetched, not {url!r}")
        # Checked here for a clear error before robots.txt is asked for, and again by the
        # transport on the address it actually connects to.
        _allowed_addresses(parts.hostname, parts.port, self.policy)

    def _load_robots(self, origin: str) -> RobotFileParser | FetchError:
        parser = RobotFileParser()
        target = origin + "/robots.txt"
        try:
            for _hop in range(self.policy.max_redirects + 1):
                response = self._get_with_retries(target, {"Accept": "text/plain"}, max_bytes=MiB)
                if response.status not in REDIRECT_STATUSES:
                    break
                target = urljoin(target, response.headers.get("location", ""))
                self._check_allowed(target)
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                # No robots.txt (404, 403, 410 …) means everything is allowed.
                parser.parse([])
                return parser
            log.warning("robots.txt of %s unavailable (%s): not crawling it", origin, exc)
            return exc
        if 200 <= response.status < 300:
            parser.parse(response.body.decode("utf-8", errors="replace").splitlines())
            delay = parser.crawl_delay(self.policy.user_agent)
            if delay:
                host = urlsplit(origin).netloc
                self._crawl_delays[host] = min(float(delay), self.policy.max_crawl_delay)
        else:
            parser.parse([])
        return parser

    def _gate(self, host: str) -> _HostGate:
        with self._lock:
            gate = self._gates.get(host)
            if gate is None:
                gate = self._gates[host] = _HostGate(self.policy.per_host_concurrency)
            return gate

    def _get_with_retries(
        self, url: str, headers: dict[str, str], *, max_bytes: int | None = None
    ) -> Response:
        host = urlsplit(url).netloc
        gate = self._gate(host)
        attempt = 0
        while True:
            delay = max(self.policy.min_delay, self._crawl_delays.get(host, 0.0))
            gate.enter(delay, self._sleep)
            try:
                response = self._get_once(url, headers, max_bytes=max_bytes)
            except FetchError as exc:
                if exc.reason not in ("timeout", "connection") or attempt >= self.policy.retries:
                    raise
                wait = self._backoff(attempt)
                log.info("%s: %s, retrying in %.1fs", url, exc, wait)
            else:
                if response.status not in RETRY_STATUSES:
                    if response.status >= 400:
                        raise _status_error(url, response.status)
                    return response
                wait = _retry_after(response.headers.get("retry-after"))
                if wait is None:
                    wait = self._backoff(attempt)
                if attempt >= self.policy.retries or wait > self.policy.max_retry_after:
                    raise _status_error(url, response.status)
                log.info("%s: HTTP %s, retrying in %.1fs", url, response.status, wait)
            finally:
                gate.leave()
            attempt += 1
            self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return self.policy.backoff * (2**attempt) * (1 + random.random() / 4)

    def _get_once(
        self, url: str, headers: dict[str, str], *, max_bytes: int | None = None
    ) -> Response:
        limit = max_bytes or self.policy.max_bytes
        deadline = time.monotonic() + self.policy.total_timeout
        _deadline.at = deadline  # the transport's reads stop there, headers included
        try:
            with self._client.stream("GET", url, headers=headers) as stream:
                declared = stream.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(
                        "too_large", f"{url} is {int(declared):,} bytes, over the {limit:,} cap"
                    )
                body = b""
                if stream.status_code not in REDIRECT_STATUSES and stream.status_code != 304:
                    raw = _read_capped(stream.iter_raw(), limit, deadline, url)
                    body = _decode_content(
                        raw,
                        stream.headers.get("content-encoding", ""),
                        self.policy.max_decompressed_bytes,
                        url,
                    )
                return Response(
                    url=str(stream.url),
                    status=stream.status_code,
                    headers=stream.headers,
                    body=body,
                )
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", f"{url} timed out ({type(exc).__name__})") from exc
        except httpx.TooManyRedirects as exc:  # pragma: no cover - redirects are ours to follow
            raise FetchError("too_many_redirects", str(exc)) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            reason = "dns" if _is_dns_failure(exc) else "connection"
            raise FetchError(reason, f"{url}: {exc or type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise FetchError("connection", f"{url}: {exc or type(exc).__name__}") from exc
        finally:
            _deadline.at = None


def _read_capped(chunks: Iterator[bytes], limit: int, deadline: float, url: str) -> bytes:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > limit:
            raise FetchError("too_large", f"{url} is over the {limit:,}-byte cap")
        if time.monotonic() > deadline:
            raise FetchError("timeout", f"{url} took longer than the total time limit")
    return bytes(buffer)


def _decode_content(raw: bytes, encoding: str, limit: int, url: str) -> bytes:
    """Undo gzip/deflate content-encoding, refusing to inflate past `limit` bytes."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            data = inflate(data, limit, wbits=zlib.MAX_WBITS | 16, what=url)
        elif coding == "deflate":
            try:
                data = inflate(data, limit, wbits=zlib.MAX_WBITS, what=url)
            except FetchError as exc:
                if exc.reason != "bad_encoding":
                    raise
                # Some servers send raw deflate without the zlib header.
                data = inflate(data, limit, wbits=-zlib.MAX_WBITS, what=url)
        else:
            raise FetchError("bad_encoding", f"{url} uses unsupported content-encoding {coding}")
    return data


def inflate(data: bytes, limit: int, *, wbits: int = zlib.MAX_WBITS | 16, what: str = "") -> bytes:
    """Decompress `data` (gzip by default), raising `FetchError('too_large')` past `limit`."""
    decompressor = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    try:
        while pending:
            out += decompressor.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise FetchError(
                    "too_large", f"{what} inflates past the {limit:,}-byte decompressed cap"
                )
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                break
        out += decompressor.flush()
    except zlib.error as exc:
        raise FetchError("bad_encoding", f"{what}: corrupt compressed body ({exc})") from exc
    if len(out) > limit:
        raise FetchError("too_large", f"{what} inflates past the {limit:,}-byte decompressed cap")
    return bytes(out)


def _status_error(url: str, status: int) -> FetchError:
    if status == 429:
        return FetchError("rate_limited", f"{url}: HTTP 429 Too Many Requests", status=status)
    if status >= 500:
        return FetchError("http_5xx", f"{url}: HTTP {status} server error", status=status)
    return FetchError(f"http_{status}", f"{url}: HTTP {status}", status=status)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _resolve(host: str, port: int | None) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _is_private(address: str) -> bool:
    """Loopback, private, link-local (cloud metadata), reserved, shared, multicast: not public."""
    ip = _ip(address)
    return not ip.is_global or ip.is_multicast


def _allowed_addresses(host: str, port: int | None, policy: FetchPolicy) -> list[str]:
    """`host`'s addresses, or `FetchError('private_address')` if any is one the policy refuses.

    One non-public answer refuses the host: a name that resolves both ways is not trusted.
    """
    addresses = _resolve(host, port)
    for address in addresses:
        if not policy.allows_address(address):
            raise FetchError(
                "private_address",
                f"{host} resolves to non-public address {address}; pass --allow-private (or "
                "--allow-network CIDR) to crawl your own network",
            )
    return addresses


# When the response being fetched on this thread must be complete (time.monotonic()): a server
# that drips its headers or body a byte at a time never trips a per-read timeout.
_deadline = threading.local()


def _time_left(timeout: float | None) -> float | None:
    """`timeout`, shortened to what is left before this thread's deadline."""
    deadline = getattr(_deadline, "at", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the total time limit for this response has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the current response's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _time_left(timeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Opens TCP connections only to addresses the policy allows, resolving the name itself and
    connecting to the address it checked: a DNS answer that changes between a check and the
    connection (rebinding) cannot reach a private host. Its connections keep to the deadline."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in _allowed_addresses(host, port, self.policy):
            try:
                stream = super().connect_tcp(
                    address, port, _time_left(timeout), local_address, socket_options
                )
                return _DeadlineStream(stream)
            except httpcore.ConnectError as exc:  # try the host's next address
                error = exc
        assert error is not None  # _resolve returns at least one address or raises
        raise error


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport over `_GuardedBackend`: TLS still verifies the host's name."""

    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so its pool is rebuilt with ours (same TLS context).
        limits = httpx.Limits()  # httpx's defaults, which its pool was built with
        self._pool = httpcore.ConnectionPool(
            ssl_context=self._pool._ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


def _is_dns_failure(exc: Exception) -> bool:
    text = str(exc).lower()
    return (
        "name or service not known" in text
        or "nodename nor servname" in text
        or ("temporary failure in name resolution" in text)
    )
