"""OllamaTestServer: the fake Ollama, every endpoint group on one HTTP server, with its knobs."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from tests.fake_ollama.generation import Generation
from tests.fake_ollama.httpd import Handler
from tests.fake_ollama.transfers import Transfers


class OllamaTestServer(Generation, Transfers):
    """An in-memory Ollama server on 127.0.0.1 with a random port (see the package docstring).

    Knobs besides the constructor (all plain attributes, change them at any time):
    ``generation`` (tokens, token_count, token_delay, thinking, tool_calls), ``pull_steps``
    (progress events per layer), ``pull_delay`` (seconds between pull/push events),
    ``pull_progress`` (digest -> bytes already pulled, used to resume), ``resume_gate`` (holds
    a resumed pull until set), ``embedding_length`` and ``embed_requires_capability``.
    """

    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {**Generation.ROUTES, **Transfers.ROUTES}

    def __init__(
        self,
        *,
        prefix: str = "",
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        lifetime: float = 300.0,
        port: int = 0,
    ) -> None:
        super().__init__(
            prefix=prefix, token=token, basic_auth=basic_auth, lifetime=lifetime, port=port
        )
        # the model store
        self.models: dict[str, dict[str, Any]] = {}
        self.registry: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.running: dict[str, dict[str, Any]] = {}
        # generation
        self.generation: dict[str, Any] = {
            "tokens": ["Hello", ",", " world", "!"],
            "token_count": 0,
            "token_delay": 0.0,
            "thinking": None,
            "tool_calls": None,
        }
        self.embedding_length = 8
        self.embed_requires_capability = False
        # transfers
        self.pull_steps = 5
        self.pull_delay = 0.0
        self.pull_progress: dict[str, int] = {}
        #: When set, a resumed pull stops after reporting where it resumes until this is set.
        self.resume_gate: threading.Event | None = None
