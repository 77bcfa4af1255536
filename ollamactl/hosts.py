"""Where the server is: ``OLLAMA_HOST`` parsing, header parsing, and the host defaults.

Pure parsing with no I/O; bad input raises :class:`UsageError` (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from ollamactl.errors import UsageError

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 11434
DEFAULT_HOST = f"http://{DEFAULT_ADDRESS}:{DEFAULT_PORT}"

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_API_SUFFIX = re.compile(r"/api(?:/[A-Za-z_]+)*/*$")
#: A label of a host name: letters (any script, IDNA-encoded on the wire), digits, '-' and '_'.
_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")
#: An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HIDDEN = "***"


@dataclass(frozen=True)
class HostURL:
    """A parsed ``OLLAMA_HOST`` value: the base URL plus any credentials it carried."""

    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

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
    shown = scrub_host(value)  # every message quotes this: never the password
    value = value.strip().strip("\"'").strip()
    if value == "ollama.com":
        value = "https://ollama.com"
    if "://" in value:
        scheme, rest = value.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise UsageError(
                f"unsupported scheme {scheme!r} in host {shown!r}", hint="use http:// or https://"
            )
        default_port: int | None = None
    else:
        scheme, rest, default_port = "http", value, DEFAULT_PORT
    hostport, slash, path = rest.partition("/")
    if any(c in path for c in "?#") or not _printable(path):
        raise UsageError(
            f"invalid path in host {shown!r}",
            hint="a server URL has no query, fragment or control characters",
        )
    path = _API_SUFFIX.sub("", slash + path).rstrip("/")
    username = password = None
    if "@" in hostport:
        userinfo, hostport = hostport.rsplit("@", 1)
        user, _, secret = userinfo.partition(":")
        username, password = (unquote(user), unquote(secret)) if userinfo else (None, None)
    host, port_text = _split_host_port(hostport)
    if not _valid_host(host) or (not host and slash and not hostport):
        raise UsageError(f"invalid host name in {shown!r}")
    port = default_port
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise UsageError(
                f"invalid port {port_text!r} in host {shown!r}", hint="ports are 0-65535"
            )
        port = int(port_text)
    return HostURL(scheme, host or DEFAULT_ADDRESS, port, path, username, password)


def scrub_host(text: str) -> str:
    """``text`` (a host URL, valid or not) with its password, or a bare user token, hidden.

    Used before any message quotes a host, so that a URL that does not parse cannot show
    its credentials either. Everything before the last ``@`` is user information.

    >>> scrub_host("https://user:s3cret@host:99999/x"), scrub_host("https://tok3n@h")
    ('https://user:***@host:99999/x', 'https://***@h')
    >>> scrub_host("lab:11434")
    'lab:11434'
    """
    scheme, separator, rest = text.rpartition("://") if "://" in text else ("", "", text)
    userinfo, at, after = rest.rpartition("@")
    if not at:
        return text
    user, colon, _ = userinfo.partition(":")
    hidden = f"{user}:{HIDDEN}" if colon else HIDDEN
    return f"{scheme}{separator}{hidden}@{after}"


def host_credentials(text: str) -> list[str]:
    """The user information of a host URL that may not parse, leniently: what to redact.

    >>> host_credentials("https://me:pw%40x@h:99999"), host_credentials("h:1")
    (['me:pw%40x', 'pw%40x', 'me:pw@x', 'pw@x'], [])
    """
    rest = text.rpartition("://")[2]
    userinfo, at, _ = rest.rpartition("@")
    if not at or not userinfo:
        return []
    _, colon, secret = userinfo.partition(":")
    raw = [userinfo, secret] if colon else [userinfo]
    return list(dict.fromkeys([*raw, *map(unquote, raw)]))


def _printable(text: str) -> bool:
    """No control characters, white space or undecodable bytes (surrogate escapes)."""
    return all(c.isprintable() and not c.isspace() and not 0xD800 <= ord(c) < 0xE000 for c in text)


def _valid_host(host: str) -> bool:
    """An IP address or a host name of non-empty labels (empty: the default address)."""
    if not host:
        return True
    if ":" in host or host.replace(".", "").isdigit():
        import ipaddress

        try:
            ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        return True
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def _split_host_port(hostport: str) -> tuple[str, str]:
    """Split ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address."""
    if hostport.startswith("[") and "]" in hostport:
        host, _, after = hostport[1:].partition("]")
        return host, after.removeprefix(":")
    if hostport.count(":") > 1:  # a bare IPv6 address such as ::1
        return hostport, ""
    host, _, port = hostport.partition(":")
    return host, port


def parse_header(text: str) -> tuple[str, str]:
    """Parse a ``Name: value`` header given on the command line or in config.

    A message about a header never shows its value: without a colon, only the first word.

    >>> parse_header("X-Api-Key:  abc ")
    ('X-Api-Key', 'abc')
    >>> parse_header("nocolon")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid header 'nocolon' (expected 'Name: value')
    >>> parse_header("X-Team infra")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid header 'X-Team ***' (expected 'Name: value')
    >>> parse_header("X-Api-Tokens3cret")
    Traceback (most recent call last):
    ...
    ollamactl.errors.UsageError: invalid header '***' (expected 'Name: value')
    """
    name, colon, header_value = text.partition(":")
    name = name.strip()
    if not colon:
        raise UsageError(f"invalid header {_quotable(text)!r}", hint="expected 'Name: value'")
    return check_header_name(name), check_header_value(header_value.strip(), f"the header {name!r}")


def split_malformed_header(text: str) -> tuple[str, str]:
    """A header without a colon as (what may be its name, the rest: maybe a secret).

    >>> split_malformed_header(" X-Api-Token s3cret"), split_malformed_header("X-Tökabc")
    (('X-Api-Token', 's3cret'), ('X-T', 'ökabc'))
    """
    text = text.strip()
    match = _HEADER_NAME.match(text)
    end = match.end() if match else 0
    return text[:end], text[end:].strip()


def _quotable(text: str) -> str:
    """What a message may quote of a header that does not parse: its name, never a value.

    What follows the name may be a pasted value, and a secret-looking name may have its
    value glued on (``X-Api-Tokens3cret``): such a name is not quoted either.
    """
    name, rest = split_malformed_header(text)
    if is_secret_header(name):
        return HIDDEN
    return f"{name} {HIDDEN}" if rest else name


def check_header_name(name: str) -> str:
    """``name`` if HTTP can send it as a header name (ASCII letters, digits, ``-`` ...)."""
    if not _HEADER_NAME.fullmatch(name):
        raise UsageError(
            f"invalid header name {_quotable(name)!r}",
            hint="a header name is ASCII letters, digits and '-'; expected 'Name: value'",
        )
    return name


def check_header_value(text: str, what: str) -> str:
    """``text`` if HTTP can carry it in a header; the message names ``what``, never the value."""
    if "\r" in text or "\n" in text:
        raise UsageError(f"{what} contains a line break", hint="HTTP headers cannot carry one")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise UsageError(
            f"{what} contains characters HTTP headers cannot carry",
            hint="only Latin-1 characters are allowed; check for a pasted typographic character",
        ) from None
    if any(c != "\t" and not c.isprintable() for c in text):
        raise UsageError(f"{what} contains control characters")
    return text


def is_secret_header(name: str) -> bool:
    """Whether a header (by its name) carries a credential: its value is never shown.

    >>> is_secret_header("CF-Access-Client-Secret"), is_secret_header("X-Team")
    (True, False)
    """
    lowered = name.lower()
    return lowered in ("authorization", "cookie", "proxy-authorization") or any(
        word in lowered for word in ("token", "secret", "key", "auth")
    )
