"""Where the server is: ``OLLAMA_HOST`` parsing, header parsing, and the host defaults.

Pure parsing with no I/O; bad input raises :class:`UsageError` (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ollamactl.errors import UsageError

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 11434
DEFAULT_HOST = f"http://{DEFAULT_ADDRESS}:{DEFAULT_PORT}"

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_API_SUFFIX = re.compile(r"/api(?:/[A-Za-z_]+)*/*$")


@dataclass(frozen=True)
class HostURL:
    """A parsed ``OLLAMA_HOST`` value: the base URL plus any credentials it carried."""

    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None = None
    password: str | None = None

    @property
    def base_url(self) -> str:
        """The URL API paths are appended to, without credentials or trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{host}{port}{self.path}"

    @property
    def is_loopback(self) -> bool:
        """True when the host is this machine."""
        return self.host in _LOOPBACK_HOSTS or self.host.startswith("127.")


def parse_host(value: str) -> HostURL:
    """Parse a host the way ``OLLAMA_HOST`` is parsed by the Go CLI, minus its pitfalls.

    A default port is added only when no scheme is given (11434, like Go); an
    explicit ``http://``/``https://`` URL keeps its implicit port 80/443, so no
    ``:443`` ends up in front of a gateway. A path prefix is kept, and a pasted
    ``/api`` (or ``/api/chat``) suffix and trailing slashes are dropped.

    >>> parse_host("").base_url
    'http://127.0.0.1:11434'
    >>> parse_host("1.2.3.4").base_url
    'http://1.2.3.4:11434'
    >>> parse_host(":1234").base_url
    'http://127.0.0.1:1234'
    >>> parse_host("example.com:1234").base_url
    'http://example.com:1234'
    >>> parse_host("[::1]").base_url, parse_host("::1").base_url
    ('http://[::1]:11434', 'http://[::1]:11434')
    >>> parse_host("http://1.2.3.4").base_url, parse_host("https://1.2.3.4").base_url
    ('http://1.2.3.4', 'https://1.2.3.4')
    >>> parse_host("https://example.com/ollama").base_url
    'https://example.com/ollama'
    >>> parse_host(' "1.2.3.4" ').base_url
    'http://1.2.3.4:11434'
    >>> parse_host("ollama.com").base_url
    'https://ollama.com'
    >>> parse_host("https://abc.gw.example.com/ollama-api/api/chat").base_url
    'https://abc.gw.example.com/ollama-api'
    >>> parse_host("http://host:8080/").base_url
    'http://host:8080'
    >>> h = parse_host("https://me:s%40cret@gw.example.com/x")
    >>> h.base_url, h.username, h.password
    ('https://gw.example.com/x', 'me', 's@cret')
    >>> parse_host(":66000")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid port '66000' in host ':66000' (ports are 0-65535)
    >>> parse_host("ftp://example.com")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: unsupported scheme 'ftp' in host 'ftp://example.com' (use ...)
    """
    raw = value
    value = value.strip().strip("\"'").strip()
    if value == "ollama.com":
        value = "https://ollama.com"
    if "://" in value:
        scheme, rest = value.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise UsageError(
                f"unsupported scheme {scheme!r} in host {raw!r}", hint="use http:// or https://"
            )
        default_port: int | None = None
    else:
        scheme, rest, default_port = "http", value, DEFAULT_PORT
    hostport, slash, path = rest.partition("/")
    path = _API_SUFFIX.sub("", slash + path).rstrip("/")
    username = password = None
    if "@" in hostport:
        userinfo, hostport = hostport.rsplit("@", 1)
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret)
    host, port_text = _split_host_port(hostport)
    if any(c.isspace() for c in host) or "/" in host:
        raise UsageError(f"invalid host name in {raw!r}")
    port = default_port
    if port_text:
        if not port_text.isdigit() or int(port_text) > 65535:
            raise UsageError(
                f"invalid port {port_text!r} in host {raw!r}", hint="ports are 0-65535"
            )
        port = int(port_text)
    return HostURL(scheme, host or DEFAULT_ADDRESS, port, path, username, password)


def _split_host_port(hostport: str) -> tuple[str, str]:
    """Split ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address."""
    if hostport.startswith("["):
        host, _, after = hostport[1:].partition("]")
        return host, after.removeprefix(":")
    if hostport.count(":") > 1:  # a bare IPv6 address such as ::1
        return hostport, ""
    host, _, port = hostport.partition(":")
    return host, port


def parse_header(text: str) -> tuple[str, str]:
    """Parse a ``Name: value`` header given on the command line or in config.

    >>> parse_header("X-Api-Key:  abc ")
    ('X-Api-Key', 'abc')
    >>> parse_header("nocolon")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid header 'nocolon' (expected 'Name: value')
    """
    name, colon, header_value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise UsageError(f"invalid header {text!r}", hint="expected 'Name: value'")
    if "\n" in header_value or "\r" in header_value:
        raise UsageError(f"invalid header {name!r}: the value contains a line break")
    return name, header_value.strip()


def is_secret_header(name: str) -> bool:
    """Whether a header (by its name) carries a credential: its value is never shown.

    >>> is_secret_header("CF-Access-Client-Secret"), is_secret_header("X-Team")
    (True, False)
    """
    lowered = name.lower()
    return lowered in ("authorization", "cookie", "proxy-authorization") or any(
        word in lowered for word in ("token", "secret", "key", "auth")
    )
