"""Generation: ``/api/generate``, ``/api/chat`` (with tool calls), ``/api/embed`` and the
legacy ``/api/embeddings``.

What a model answers is set by the ``generation`` knob (see OllamaTestServer); embeddings
are deterministic unit vectors derived from the model name and the text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import time
from collections.abc import Generator, Iterable
from typing import Any, Callable, ClassVar

from tests.fake_ollama.httpd import Handler
from tests.fake_ollama.store import ModelStore, full_name, parse_name
from tests.fake_ollama.wire import (
    ApiError,
    Events,
    RecordedRequest,
    RequestBody,
    Result,
    Stream,
    dumps,
    encode,
    json_reply,
    line,
    quote,
    timestamp,
)


def _stats(load_ns: int, prompt_count: int, eval_count: int, eval_ns: int) -> dict[str, int]:
    prompt_ns = 40_000 * prompt_count + 500_000
    return {
        "total_duration": load_ns + prompt_ns + eval_ns + 200_000,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_count,
        "prompt_eval_duration": prompt_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }


def _prompt_tokens(*texts: Any) -> int:
    return sum(len(str(text).split()) for text in texts) + 10


def _embedding(text: str, dims: int, scale: float = 1.0) -> list[float]:
    """A deterministic unit vector (times ``scale``) derived from the text's hash."""
    rng = random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest(), "big"))
    vector = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    return _normalize(vector, scale)


def _normalize(vector: list[float], scale: float = 1.0) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(f"{scale * x / norm:.8g}") for x in vector]


class Generation(ModelStore):
    """Answers prompts, chats and embedding requests for the models in the store."""

    def __init__(self, **http: Any) -> None:
        super().__init__(**http)
        #: What every model answers: ``tokens`` (or ``token_count`` numbered ones), a delay per
        #: token, ``thinking`` pieces (sent when a request asks to think), ``tool_calls``.
        self.generation: dict[str, Any] = {
            "tokens": ["Hello", ",", " world", "!"],
            "token_count": 0,
            "token_delay": 0.0,
            "thinking": None,
            "tool_calls": None,
        }
        #: When set, /api/embed refuses models without the "embedding" capability.
        self.embed_requires_capability = False

    def _tokens(self, fmt: Any) -> tuple[Iterable[str], int]:
        """The reply tokens and their number (``format`` turns them into one JSON text)."""
        count = int(self.generation.get("token_count") or 0)
        tokens: Iterable[str]
        if count > 0:
            tokens = (f"tok{i} " for i in range(count))
        else:
            tokens = list(self.generation.get("tokens") or [])
            count = len(tokens)
        if fmt:
            tokens = ['{"response": ', json.dumps("".join(tokens)), "}"]
            count = 3
        return tokens, count

    def _check_model(
        self, model: dict[str, Any], raw: str, *, think: Any, images: bool, tools: bool = False
    ) -> None:
        caps = model["capabilities"]
        missing = [
            cap
            for cap, wanted in (("completion", True), ("tools", tools), ("vision", images))
            if wanted and cap not in caps
        ]
        if missing:
            raise ApiError(400, f"{full_name(model)} does not support {' '.join(missing)}")
        if think and "thinking" not in caps:
            raise ApiError(400, f"{quote(raw)} does not support thinking")

    def _reply_plan(self, body: RequestBody) -> tuple[list[str], Iterable[str], int, str]:
        """Thinking pieces, tokens (capped by num_predict), their count and the done_reason."""
        tokens, count = self._tokens(body.get("format"))
        limit = body.get("options", {}).get("num_predict")
        reason = "stop"
        if isinstance(limit, (int, float)) and 0 <= limit < count:
            tokens, count, reason = itertools.islice(tokens, int(limit)), int(limit), "length"
        thinking = list(self.generation.get("thinking") or []) if body.get("think") else []
        return thinking, tokens, count, reason

    def _generate(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "GenerateRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        if parse_name(raw) is None:
            raise ApiError(404, f"model '{raw}' not found")
        prompt = body.text("prompt")
        raw_mode = bool(body.get("raw"))
        if raw_mode and (body.get("template") or body.get("system") or body.get("context")):
            raise ApiError(400, "raw mode does not support template, system, or context")
        model = self._local(raw)
        if model is None:
            raise ApiError(404, f"model '{raw}' not found")
        self._check_model(model, raw, think=body.get("think"), images=bool(body.get("images")))
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not prompt and not body.get("images"):
            reason = "unload" if keep_alive == 0 else "load"
            return json_reply(
                {
                    "model": raw,
                    "created_at": timestamp(),
                    "response": "",
                    "done": True,
                    "done_reason": reason,
                }
            )
        thinking, tokens, count, reason = self._reply_plan(body)
        prompt_count = _prompt_tokens(prompt, body.get("system", ""))

        def finish(response: str, thought: str, eval_ns: int) -> dict[str, Any]:
            final: dict[str, Any] = {"model": raw, "created_at": timestamp(), "response": response}
            if thought:
                final["thinking"] = thought
            final.update(done=True, done_reason=reason)
            if not raw_mode:
                final["context"] = [(i * 37 + 13) % 514 for i in range(prompt_count + count)]
            final.update(_stats(load_ns, prompt_count, count + len(thinking), eval_ns))
            return final

        if not body.stream:
            response, thought, eval_ns = self._collect(thinking, tokens)
            return json_reply(finish(response, thought, eval_ns))
        head = '{"model":' + dumps(raw) + ',"created_at":"'
        return Stream(
            self._token_lines(
                thinking,
                tokens,
                lambda text: f'","response":"","thinking":{text},"done":false}}\n',
                lambda text: f'","response":{text},"done":false}}\n',
                head,
                lambda eval_ns: finish("", "", eval_ns),
            )
        )

    def _chat(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "ChatRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        if not raw:
            raise ApiError(400, "model is required")
        model = self._local(raw)
        if model is None:
            raise ApiError(404, f"model {quote(raw)} not found, try pulling it first")
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        tools = body.get("tools", [])
        self._check_model(
            model,
            raw,
            think=body.get("think"),
            tools=bool(tools),
            images=any(m.get("images") for m in messages),
        )
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not messages:
            reason = "unload" if keep_alive == 0 else "load"
            return json_reply(
                {
                    "model": raw,
                    "created_at": timestamp(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": reason,
                    "done": True,
                }
            )
        prompt_count = _prompt_tokens(*(m.get("content", "") for m in messages)) + 4 * len(messages)
        if tools and messages[-1].get("role") != "tool":
            return self._tool_call_reply(raw, body, tools, load_ns, prompt_count)
        thinking, tokens, count, reason = self._reply_plan(body)

        def finish(content: str, thought: str, eval_ns: int) -> dict[str, Any]:
            message = {"role": "assistant", "content": content}
            if thought:
                message["thinking"] = thought
            return {
                "model": raw,
                "created_at": timestamp(),
                "message": message,
                "done_reason": reason,
                "done": True,
                **_stats(load_ns, prompt_count, count + len(thinking), eval_ns),
            }

        if not body.stream:
            content, thought, eval_ns = self._collect(thinking, tokens)
            return json_reply(finish(content, thought, eval_ns))
        head = '{"model":' + dumps(raw) + ',"created_at":"'
        message = '","message":{"role":"assistant","content":'
        return Stream(
            self._token_lines(
                thinking,
                tokens,
                lambda text: f'{message}"","thinking":{text}}},"done":false}}\n',
                lambda text: f'{message}{text}}},"done":false}}\n',
                head,
                lambda eval_ns: finish("", "", eval_ns),
            )
        )

    def _tool_call_reply(
        self, raw: str, body: RequestBody, tools: list[Any], load_ns: int, prompt_count: int
    ) -> Result:
        """Answer a chat that offers tools with a call of the first tool (or generation knob)."""
        calls = self.generation.get("tool_calls")
        if calls is None:
            function = (tools[0] or {}).get("function", {})
            schema = function.get("parameters", {}) or {}
            samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
            arguments = {
                prop: samples.get((schema.get("properties", {}).get(prop) or {}).get("type"), "x")
                for prop in schema.get("required", [])
            }
            calls = [
                {"function": {"index": 0, "name": function.get("name", ""), "arguments": arguments}}
            ]
        calling = {"role": "assistant", "content": "", "tool_calls": calls}
        stats = _stats(load_ns, prompt_count, 1, 1_000_000)

        def reply(message: dict[str, Any], done: bool) -> dict[str, Any]:
            head = {"model": raw, "created_at": timestamp(), "message": message}
            if not done:
                return {**head, "done": False}
            return {**head, "done_reason": "stop", "done": True, **stats}

        if not body.stream:
            return json_reply(reply(calling, True))

        def events() -> Events:
            yield reply(calling, False)
            yield reply({"role": "assistant", "content": ""}, True)

        return Stream(encode(events()))

    def _collect(self, thinking: list[str], tokens: Iterable[str]) -> tuple[str, str, int]:
        """Generate everything for a non-streamed reply (honouring token_delay)."""
        delay = float(self.generation.get("token_delay") or 0)
        start = time.perf_counter_ns()
        pieces = []
        for token in itertools.chain(thinking, tokens):
            self._pause(delay)
            pieces.append(token)
        return (
            "".join(pieces[len(thinking) :]),
            "".join(thinking),
            max(time.perf_counter_ns() - start, 1),
        )

    def _token_lines(
        self,
        thinking: list[str],
        tokens: Iterable[str],
        think_tail: Callable[[str], str],
        token_tail: Callable[[str], str],
        head: str,
        finish: Callable[[int], dict[str, Any]],
    ) -> Generator[bytes, None, None]:
        """Stream lines built by string concatenation (fast enough for 100k-token benchmarks)."""
        delay = float(self.generation.get("token_delay") or 0)
        start = time.perf_counter_ns()
        for tail, pieces in ((think_tail, thinking), (token_tail, tokens)):
            for piece in pieces:
                self._pause(delay)
                yield (head + timestamp() + tail(dumps(piece))).encode()
        yield line(finish(max(time.perf_counter_ns() - start, 1)))

    # -- embeddings ------------------------------------------------------------------------

    def _embed_model(self, raw: str) -> dict[str, Any]:
        model = self._local(raw)
        if model is None:
            raise ApiError(404, f"model {quote(raw)} not found, try pulling it first")
        if self.embed_requires_capability and "embedding" not in model["capabilities"]:
            raise ApiError(400, f"{full_name(model)} does not support embedding")
        return model

    def _embed(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "EmbedRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        model = self._embed_model(raw)
        value = body.get("input", [])
        if isinstance(value, str):
            inputs = [value] if value else []
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            inputs = value
        else:
            raise ApiError(400, "invalid input type")
        body.check_options()
        load_ns = self._load(model, keep_alive)
        if not inputs:
            return json_reply({"model": raw, "embeddings": []})
        vectors = [_embedding(f"{model['name']}\n{text}", self.embedding_length) for text in inputs]
        dims = body.get("dimensions")
        if isinstance(dims, int) and 0 < dims < self.embedding_length:
            vectors = [_normalize(vector[:dims]) for vector in vectors]
        prompt_count = sum(len(text.split()) + 2 for text in inputs)
        return json_reply(
            {
                "model": raw,
                "embeddings": vectors,
                "total_duration": load_ns + 3_000_000 * len(inputs),
                "load_duration": load_ns,
                "prompt_eval_count": prompt_count,
            }
        )

    def _embeddings(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "EmbeddingRequest")
        raw = body.text("model")
        keep_alive = body.keep_alive()
        model = self._embed_model(raw)
        prompt = body.text("prompt")
        body.check_options()
        self._load(model, keep_alive)
        if not prompt:
            return json_reply({"embedding": []})
        scale = 8.0  # the legacy endpoint does not normalise
        return json_reply(
            {"embedding": _embedding(f"{model['name']}\n{prompt}", self.embedding_length, scale)}
        )

    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {
        **ModelStore.ROUTES,
        "/api/generate": {"POST": _generate},
        "/api/chat": {"POST": _chat},
        "/api/embed": {"POST": _embed},
        "/api/embeddings": {"POST": _embeddings},
    }
