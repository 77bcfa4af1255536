"""Fallback servers: the profiles a profile's ``fallback`` names, tried when its server is down.

Whether a server can be reached is decided once, when the client is built: a TCP connection
to the first hop (the server, or the proxy requests would go through) is refused, its name
does not resolve, or it does not open within the connect timeout. Nothing was sent then, so
another server may take the command. Any HTTP answer (an error status or a gateway's 502
included), a TLS failure, or a connection that breaks later belongs to the server and never
switches servers; nor does anything after the first request.

Each fallback is its own profile, used wholesale: its host with its own credentials, CA and
client certificate; the command line adds only its timeouts and retries. A fallback's own
``fallback`` is tried after the ones already named (each profile once). A server named with
``--host`` or ``OLLAMA_HOST`` has no fallback (see :attr:`ollamactl.config.Settings.fallback`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ollamactl.app import warn
from ollamactl.config import Flags, Settings, resolve
from ollamactl.errors import ConnectionFailed, ConnectTimeout, UsageError

#: The port of a proxy URL that names none, by scheme (requests' defaults).
_PROXY_PORTS = {"https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}


def first_hop(settings: Settings) -> tuple[str, int]:
    """Where a request's TCP connection goes: the proxy from the environment, else the server."""
    from requests.utils import get_environ_proxies

    proxies = get_environ_proxies(settings.base_url)
    proxy = proxies.get(settings.host.scheme) or proxies.get("all")
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return parts.hostname or "", parts.port or _PROXY_PORTS.get(parts.scheme, 80)
    return settings.host.host, settings.host.port or (
        443 if settings.host.scheme == "https" else 80
    )


def unreachable(settings: Settings) -> ConnectionFailed | None:
    """Why no request could be sent to the server of ``settings``; ``None`` if it can be."""
    where = settings.base_url
    try:
        connection = socket.create_connection(first_hop(settings), settings.connect_timeout)
    except socket.gaierror:
        return ConnectionFailed(f"could not connect to {where}: the host name does not resolve")
    except socket.timeout:
        return ConnectTimeout(f"timed out connecting to {where}")
    except OSError as e:
        return ConnectionFailed(f"could not connect to {where}: {(e.strerror or str(e)).lower()}")
    connection.close()
    return None


def reachable(first: Settings, flags: Flags) -> Settings:
    """``first`` if its server can be reached, else the first of its fallbacks that can.

    A switch is a warning on stderr naming the profile that answers; ConnectionFailed (exit 3)
    lists every profile tried when none can be reached.
    """
    tried: list[tuple[Settings, ConnectionFailed]] = []
    pending, seen = list(first.fallback), {first.profile}
    settings: Settings | None = first
    while settings is not None:
        error = unreachable(settings)
        if error is None:
            break
        tried.append((settings, error))
        settings = _next_fallback(pending, seen, flags)
    if settings is None:
        reasons = "; ".join(f"{s.profile!r}: {e.message}" for s, e in tried)
        raise ConnectionFailed(
            f"cannot reach profile {first.profile!r} nor its fallbacks ({reasons})",
            hint="is one of these servers running? --host or OLLAMA_HOST uses one server,"
            " without fallbacks",
        )
    if tried:
        skipped = ", ".join(f"{s.profile!r} ({e.message})" for s, e in tried)
        warn(
            f"cannot reach {skipped}; using the fallback {settings.profile!r} ({settings.base_url})"
        )
    return settings


def _next_fallback(pending: list[str], seen: set[str | None], flags: Flags) -> Settings | None:
    """The settings of the next profile of ``pending`` not tried yet (its fallbacks queued)."""
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        settings = resolve(
            Flags(
                profile=name,
                connect_timeout=flags.connect_timeout,
                read_timeout=flags.read_timeout,
                retries=flags.retries,
            )
        )
        pending += settings.fallback
        return settings
    return None


def check_fallbacks(profiles: Mapping[str, Any]) -> None:
    """UsageError if a profile's fallback names a profile that does not exist, or makes a cycle."""
    graph = {
        str(name): [str(n) for n in table.get("fallback", [])]
        for name, table in profiles.items()
        if isinstance(table, dict)
    }
    for name, fallbacks in graph.items():
        for other in fallbacks:
            if other not in graph:
                raise UsageError(
                    f"the fallback of profile {name!r} names {other!r}, which is not a profile",
                    hint=f"profiles: {', '.join(graph)}",
                )
    for name in graph:
        cycle = _cycle(graph, [name])
        if cycle:
            raise UsageError(
                f"the fallbacks of profile {name!r} go round in a circle: {' -> '.join(cycle)}"
            )


def _cycle(graph: Mapping[str, list[str]], path: list[str]) -> list[str] | None:
    """A path of fallbacks from ``path[0]`` back to a profile already on ``path``, if any."""
    for other in graph.get(path[-1], []):
        if other in path:
            return [*path, other]
        found = _cycle(graph, [*path, other])
        if found:
            return found
    return None


def forget(profiles: Mapping[str, Any], removed: str) -> list[str]:
    """Remove profile ``removed`` from every fallback list; the profiles changed."""
    changed = []
    for name, table in profiles.items():
        if isinstance(table, dict) and removed in table.get("fallback", []):
            table["fallback"] = [n for n in table["fallback"] if n != removed]
            if not table["fallback"]:
                del table["fallback"]
            changed.append(str(name))
    return changed
