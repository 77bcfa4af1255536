"""The exception hierarchy and the exit-code contract.

Nothing here imports click or requests, so every layer can use it cheaply.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: a documented contract for scripts, each with what it means.

    >>> ExitCode.NOT_FOUND.description
    'model not found'
    """

    description: str

    def __new__(cls, value: int, description: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    OK = 0, "success"
    API_ERROR = 1, "the server answered with an error"
    USAGE = 2, "usage error (bad flag, host, profile or file)"
    CONNECTION = 3, "cannot connect: refused, DNS, TLS, timeout, connection lost"
    AUTH = 4, "authentication or authorization refused (HTTP 401/403)"
    NOT_FOUND = 5, "model not found"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"


def exit_code_table() -> str:
    """The exit codes and their meanings, one per line, as ``--help`` and the docs show them.

    >>> print(exit_code_table().splitlines()[-1])
    130  interrupted (Ctrl-C)
    """
    return "\n".join(f"{int(code):<4} {code.description}" for code in ExitCode)


class OllamactlError(Exception):
    """Base of every error ollamactl reports to a user as one line."""

    exit_code: ExitCode = ExitCode.API_ERROR

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(OllamactlError):
    """Bad local input: a malformed host, an unknown profile, an unreadable file."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The configuration file cannot be read or written."""


class ConnectionFailed(OllamactlError):
    """The server could not be reached, or the connection broke."""

    exit_code = ExitCode.CONNECTION


class TLSFailed(ConnectionFailed):
    """The TLS handshake failed (unknown CA, hostname mismatch, ...)."""


class ServerTimeout(ConnectionFailed):
    """The server sent nothing for longer than the read timeout."""


class ConnectTimeout(ConnectionFailed):
    """No connection could be made within the connect timeout."""


class StreamBroken(ConnectionFailed):
    """The connection closed in the middle of a streamed response."""


class AuthFailed(OllamactlError):
    """The server or a gateway refused the credentials (HTTP 401/403)."""

    exit_code = ExitCode.AUTH


class ModelNotFound(OllamactlError):
    """The model does not exist on the server (or in the registry, for a pull)."""

    exit_code = ExitCode.NOT_FOUND


class APIError(OllamactlError):
    """The server answered with an error: HTTP >= 400 or an in-stream ``{"error": ...}``."""


class BadResponse(APIError):
    """The server answered something that is not the Ollama API (HTML, malformed JSON)."""


class Interrupted(OllamactlError):
    """The user pressed Ctrl-C."""

    exit_code = ExitCode.INTERRUPTED


class CommandFailed(OllamactlError):
    """A command that did its work and found failures (checks, prompts, hosts): their code."""

    def __init__(
        self, message: str, exit_code: int = ExitCode.API_ERROR, *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = ExitCode(exit_code)
