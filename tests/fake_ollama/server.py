"""OllamaTestServer: the fake Ollama, every endpoint group on one HTTP server."""

from __future__ import annotations

from typing import ClassVar

from tests.fake_ollama.generation import Generation
from tests.fake_ollama.httpd import Handler
from tests.fake_ollama.transfers import Transfers


class OllamaTestServer(Generation, Transfers):
    """An in-memory Ollama server on 127.0.0.1 with a random port (see the package docstring).

    Constructor (keywords only): ``prefix``, ``token``, ``basic_auth``, ``lifetime``, ``port``
    (see FakeHTTPServer). Knobs, plain attributes to change at any time: ``generation`` and
    ``embed_requires_capability`` (see Generation), ``pull_steps``, ``pull_delay``,
    ``pull_progress`` and ``resume_gate`` (see Transfers), ``embedding_length`` (ModelStore).
    """

    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {**Generation.ROUTES, **Transfers.ROUTES}
