"""What every command receives: the settings, a lazily built client and the terminal.

Cheap to import (it runs on every start): the client, and with it requests, is imported
only when a command first talks to the server.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

import click

from ollamactl.config import Flags, Settings, redact, resolve
from ollamactl.hosts import is_secret_header
from ollamactl.terminal import Terminal, sanitise

if TYPE_CHECKING:
    from ollamactl.client import Client


def warn(message: str) -> None:
    """Write a warning line to stderr (control characters made visible)."""
    click.echo(f"Warning: {sanitise(message)}", err=True)


def echo_json(value: Any) -> None:
    """Print a value as JSON on stdout."""
    from ollamactl import render

    click.echo(render.to_json(value))


class App:
    """The resolved settings (on first use), the HTTP client (on first use) and the terminal."""

    def __init__(
        self,
        flags: Flags,
        *,
        debug: bool = False,
        terminal: Terminal | None = None,
        fallback: bool = True,
    ) -> None:
        self.flags = flags
        self.debug = debug
        #: Whether a profile's fallback servers may be used (see :mod:`ollamactl.fallback`).
        self.fallback = fallback
        self.terminal = terminal or Terminal.system()
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        """The effective settings (resolved on first use)."""
        if self._settings is None:
            self._settings = resolve(self.flags)
        return self._settings

    @property
    def client(self) -> Client:
        """The HTTP client (built, and requests imported, on first use)."""
        if self._client is None:
            from ollamactl.client import Client

            settings = self.settings
            if self.fallback and settings.fallback:
                from ollamactl.fallback import reachable

                settings = self._settings = reachable(settings, self.flags)
            self.warn_about_transport(settings)
            self._client = Client(settings)
        return self._client

    def for_profile(self, profile: str) -> App:
        """The same command-line flags with another profile, without its fallbacks (the fleet
        view asks each profile's own server)."""
        flags = dataclasses.replace(self.flags, profile=profile)
        return App(flags, debug=self.debug, terminal=self.terminal, fallback=False)

    def warn_about_transport(self, settings: Settings) -> None:
        """Warn (stderr) about disabled TLS checks and credentials sent over plain http://."""
        if settings.insecure_tls:
            warn("TLS certificate verification is disabled (--insecure-tls)")
        sends_credentials = bool(
            settings.api_key
            or settings.host.password
            or any(is_secret_header(name) for name in settings.headers)
        )
        if sends_credentials and settings.host.scheme == "http" and not settings.host.is_loopback:
            warn(
                f"credentials are sent over plain http:// to {settings.host.host};"
                " use https:// to keep them private"
            )

    def redact(self, text: str) -> str:
        """``text`` made safe to show: every secret hidden, control characters made visible.

        Knows the secrets of the settings once resolved, and those of the command line and
        the environment even when they did not parse.
        """
        secrets = self.flags.secrets(os.environ)
        if self._settings is not None:
            secrets += self._settings.secrets
        return sanitise(redact(text, secrets))


pass_app = click.make_pass_decorator(App)
