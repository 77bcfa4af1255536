"""A local, Ollama-compatible HTTP server for tests and benchmarks (standard library only).

Response shapes, status codes, content types and error strings follow recordings of a real
Ollama 0.9.3 server. State (models, registry, blobs, loaded models) lives in plain dicts that
tests may inspect or edit, ``add_fault`` injects proxy errors, delays, broken or stalled
streams, and ``requests`` / ``last_request(path)`` tell what the server received::

    with OllamaTestServer() as server:
        server.add_model("tiny")
        ...  # run the client against server.url
        assert server.last_request("/api/chat").json["model"] == "tiny"

The modules, one job each (``OllamaTestServer`` inherits them in this order, bottom up):

- ``wire``: recorded requests, replies, Ollama's JSON and Go's error wording
- ``httpd``: HTTP plumbing, recording, prefix and credentials, routing, fault injection
- ``store``: model names and records; root, version, tags, ps, show, copy, delete
- ``generation``: generate, chat (with tool calls), embed, embeddings
- ``transfers``: pull (resumable), push, create, blobs
- ``server``: ``OllamaTestServer`` with its knobs; ``__main__`` serves it from the command line
"""

from tests.fake_ollama.server import OllamaTestServer
from tests.fake_ollama.wire import JSON_TYPE, RecordedRequest, Reply

__all__ = ["JSON_TYPE", "OllamaTestServer", "RecordedRequest", "Reply"]
