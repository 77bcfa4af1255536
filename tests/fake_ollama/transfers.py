"""Transfers: ``/api/pull`` (resumable), ``/api/push``, ``/api/create`` and ``/api/blobs/``.

Pulls copy a model from ``registry`` into ``models`` with progress per layer; progress per
digest is kept in ``pull_progress``, so that a pull cut short resumes where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from contextlib import closing
from typing import Any, ClassVar

from tests.fake_ollama.httpd import Handler
from tests.fake_ollama.store import (
    MODELS_DIR,
    WEIGHT_MEDIA,
    ModelStore,
    Name,
    content_layers,
    fake_layer,
    layer,
    model_record,
    parse_name,
)
from tests.fake_ollama.wire import (
    WAIT_TYPE,
    ApiError,
    Events,
    RecordedRequest,
    Reply,
    RequestBody,
    Result,
    Stream,
    encode,
    error_reply,
    json_reply,
    quote,
    timestamp,
)

QUANT_TYPES = {"Q4_K_M", "Q4_K_S", "Q8_0"}
_DIGEST_RE = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")


def _no_blob(digest: str) -> dict[str, Any]:
    path = f"{MODELS_DIR}/blobs/{digest.replace(':', '-')}"
    return {"error": f"open {path}: no such file or directory"}


class Transfers(ModelStore):
    """Moves models between the registry and the store, and builds new ones from blobs."""

    def __init__(self, **http: Any) -> None:
        super().__init__(**http)
        #: Progress events per layer of a pull or push, and seconds between two of them.
        self.pull_steps = 5
        self.pull_delay = 0.0
        #: Digest -> bytes already pulled: a pull resumes from there.
        self.pull_progress: dict[str, int] = {}
        #: When set, a resumed pull stops after reporting where it resumes until this is set.
        self.resume_gate: threading.Event | None = None

    def _progress_reply(self, body: RequestBody, events: Events) -> Result:
        """Stream the events, or with ``stream: false`` answer like Ollama's waitForStream."""
        if body.stream:
            return Stream(encode(events))
        last: dict[str, Any] = {}
        with closing(events):
            for event in events:
                if "error" in event:
                    status = event.get("status", 500)
                    return error_reply(status, event["error"], WAIT_TYPE)
                last = event
        return json_reply(last, 200, WAIT_TYPE)

    def _pull(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "PullRequest")
        parsed = parse_name(body.text("model", "name"))
        if parsed is None:
            raise ApiError(400, "invalid model name")
        return self._progress_reply(body, self._pull_events(parsed.key, final=True))

    def _pull_events(self, key: str, *, final: bool) -> Events:
        """Pull progress; progress per digest is saved once a line was consumed (sent)."""
        yield {"status": "pulling manifest"}
        source = self.registry.get(key)
        if source is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for item in source["layers"]:
            digest, total = item["digest"], item["size"]
            done = min(self.pull_progress.get(digest, 0), total)
            steps = max(self.pull_steps, 1)
            if done >= total:
                points = [total]
            else:  # a resumed pull first reports what it already has
                points = [done] if done else []
                points += [done + (total - done) * i // steps for i in range(1, steps + 1)]
            for completed in points:
                self._pause(self.pull_delay)
                yield {
                    "status": f"pulling {digest[7:19]}",
                    "digest": digest,
                    "total": total,
                    "completed": completed,
                }
                self.pull_progress[digest] = completed
                if done and completed == done and self.resume_gate is not None:
                    self._wait_for(self.resume_gate)
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        model = copy.deepcopy(source)
        model["modified_at"] = timestamp()
        self.models[key] = model
        if final:
            yield {"status": "success"}

    def _push(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "PushRequest")
        raw = body.text("model", "name")
        if not raw:
            raise ApiError(400, "model is required")
        parsed = parse_name(raw)
        if parsed is None:
            raise ApiError(400, "invalid model name")
        return self._progress_reply(body, self._push_events(parsed))

    def _push_events(self, name: Name) -> Events:
        yield {"status": "retrieving manifest"}
        model = self.models.get(name.key)
        if model is None:
            path = f"{MODELS_DIR}/manifests/{name.host}/{name.namespace}/{name.model}/{name.tag}"
            yield {"status": "couldn't retrieve manifest"}
            yield {"error": f"open {path}: no such file or directory"}
            return
        for item in model["layers"]:
            digest, total = item["digest"], item["size"]
            steps = max(self.pull_steps, 1)
            for i in range(1, steps + 1):
                self._pause(self.pull_delay)
                yield {
                    "status": f"pushing {digest[7:19]}",
                    "digest": digest,
                    "total": total,
                    "completed": total * i // steps,
                }
        yield {"status": "pushing manifest"}
        self.registry[name.key] = copy.deepcopy(model)
        yield {"status": "success"}

    def _create(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "CreateRequest")
        parsed = parse_name(body.text("model", "name"))
        if parsed is None:
            raise ApiError(400, "invalid model name")
        return self._progress_reply(body, self._create_events(parsed.key, body))

    def _create_events(self, key: str, body: RequestBody) -> Events:
        """Create from a local/registry model (``from``) or uploaded blobs (``files``)."""
        base: dict[str, Any] | None = None
        source = body.text("from")
        files = body.get("files")
        if source:
            parsed = parse_name(source)
            if parsed is None:
                yield {"error": "invalid model name", "status": 400}
                return
            if parsed.key not in self.models:
                if parsed.key not in self.registry:
                    # Recorded from Ollama 0.9.3: the error line, then it carries on regardless.
                    yield {"status": "pulling manifest"}
                    yield {"error": "pull model manifest: file does not exist"}
                    yield {"status": "writing manifest"}
                    yield {"status": "success"}
                    return
                yield from self._pull_events(parsed.key, final=False)
            base = self.models[parsed.key]
            weights = [x for x in base["layers"] if x["mediaType"] in WEIGHT_MEDIA]
        elif isinstance(files, dict):
            digests = [digest.replace("sha256-", "sha256:", 1) for digest in files.values()]
            missing = [digest for digest in digests if digest not in self.blobs]
            if missing:
                yield _no_blob(missing[0])
                return
            yield {"status": "parsing GGUF"}
            weights = [layer("model", self.blobs[digest]) for digest in digests]
        else:
            yield {"error": "neither 'from' or 'files' was specified", "status": 400}
            return
        meta = copy.deepcopy(base) if base else model_record(key, [], template="")
        details = meta["details"]
        known = {x["digest"] for m in self.models.values() for x in m["layers"]} | set(self.blobs)
        quantize = body.text("quantize", "quantization")
        if quantize:
            level = quantize.upper()
            if level not in QUANT_TYPES:
                yield {"error": f"unsupported quantization type {quantize}", "status": 400}
                return
            if details["quantization_level"] not in ("F16", "F32"):
                yield {
                    "error": "quantization is only supported for F16 and F32 models",
                    "status": 400,
                }
                return
            yield {"status": f"quantizing {details['quantization_level']} model to {level}"}
            weights = [
                fake_layer(f"{x['digest']}:{level}", max(x["size"] // 4, 1)) for x in weights
            ]
            details["quantization_level"] = level
        for digest in (body.get("adapters", {}) or {}).values():
            digest = digest.replace("sha256-", "sha256:", 1)
            if digest not in self.blobs:
                yield _no_blob(digest)
                return
            weights.append(layer("adapter", self.blobs[digest]))
        license_value = body.get("license", meta["license"])
        meta.update(
            template=body.text("template") or meta["template"],
            system=body.text("system") or meta["system"],
            parameters={**meta["parameters"], **(body.get("parameters", {}) or {})},
            license=[license_value] if isinstance(license_value, str) else list(license_value),
            messages=body.get("messages", meta["messages"]),
        )
        content = content_layers(
            meta["template"], meta["system"], meta["parameters"], meta["license"], meta["messages"]
        )
        for item in weights + content:
            verb = "using existing" if item["digest"] in known else "creating new"
            yield {"status": f"{verb} layer {item['digest']}"}
        yield {"status": "writing manifest"}
        self.models[key] = model_record(
            key,
            weights + content,
            family=details["family"],
            parameter_size=details["parameter_size"],
            quantization_level=details["quantization_level"],
            capabilities=meta["capabilities"],
            template=meta["template"],
            system=meta["system"],
            parameters=meta["parameters"],
            license=meta["license"],
            messages=meta["messages"],
        )
        yield {"status": "success"}

    def _blob(self, request: RecordedRequest) -> Result:
        raw = request.path[len("/api/blobs/") :]
        match = _DIGEST_RE.fullmatch(raw)
        if match is None:
            raise ApiError(400, "invalid digest format")
        digest = "sha256:" + match.group(1).lower()
        if request.method == "HEAD":
            if digest in self.blobs:
                return Reply(200, content_type=None)
            return error_reply(404, f"blob {quote(digest)} not found")
        if digest in self.blobs:
            return Reply(200, content_type=None)
        actual = "sha256:" + hashlib.sha256(request.body).hexdigest()
        if actual != digest:
            raise ApiError(400, f"digest mismatch, expected {quote(digest)}, got {quote(actual)}")
        self.blobs[digest] = request.body
        return Reply(201, content_type=None)

    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {
        **ModelStore.ROUTES,
        "/api/pull": {"POST": _pull},
        "/api/push": {"POST": _push},
        "/api/create": {"POST": _create},
        "/api/blobs/*": {"HEAD": _blob, "POST": _blob},
    }
