"""The fleet view: ask every profile of the config file at once (``--all-profiles``)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ollamactl.app import App
from ollamactl.config import config_path, load_config
from ollamactl.errors import OllamactlError, ServerTimeout, UsageError

if TYPE_CHECKING:
    from ollamactl.client import Client

Models = list[dict[str, Any]]
#: Seconds each host gets to answer, unless --read-timeout says otherwise.
FLEET_TIMEOUT = 10.0


@dataclasses.dataclass
class HostAnswer:
    """What one profile's server answered, or why it did not."""

    profile: str
    host: str = ""
    models: Models = dataclasses.field(default_factory=list)
    error: OllamactlError | None = None
    message: str = ""
    done: bool = False


def _ask(app: App, answer: HostAnswer, fetch: Callable[[Client], Models]) -> None:
    """Fill ``answer`` for its profile (runs in a thread of its own)."""
    profile_app = app.for_profile(answer.profile)
    try:
        answer.host = profile_app.settings.base_url
        answer.models = fetch(profile_app.client)
    except OllamactlError as e:
        answer.error, answer.message = e, profile_app.redact(str(e))
    answer.done = True


def check_no_connection_flags(app: App, what: str) -> None:
    """Refuse the global connection flags next to ``what`` (each profile has its own)."""
    flags = app.flags
    if flags.host or flags.profile or flags.api_key or flags.headers or flags.client_cert:
        raise UsageError(
            f"{what} cannot be combined with --host, --profile, --api-key, -H"
            " or --client-cert (each profile has its own)"
        )


def profile_names() -> list[str]:
    """The names of the config file's profiles; none is a usage error."""
    profiles = load_config().get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise UsageError(
            f"there are no profiles in {config_path()}",
            hint="add one with `ollamactl config profile add NAME --host URL`",
        )
    return [str(name) for name in profiles]


def ask_every_profile(app: App, fetch: Callable[[Client], Models]) -> list[HostAnswer]:
    """Query every profile in parallel; a host that does not answer in time is an error."""
    check_no_connection_flags(app, "--all-profiles")
    answers = [HostAnswer(name) for name in profile_names()]
    threads = [threading.Thread(target=_ask, args=(app, a, fetch), daemon=True) for a in answers]
    for thread in threads:
        thread.start()
    limit = app.flags.read_timeout or FLEET_TIMEOUT
    deadline = time.monotonic() + limit
    for thread in threads:  # daemon threads: one still waiting does not delay the exit
        thread.join(max(0.0, deadline - time.monotonic()))
    for answer in answers:
        if not answer.done:
            answer.error = ServerTimeout(f"no answer within {limit:g}s")
            answer.message = str(answer.error)
    return answers
