"""The model store: model names, model records and their layers, and the endpoints that read
or change them (``/``, version, tags, ps, show, copy, delete).

State lives in plain dicts that tests may read or edit: ``models`` (local, by key such as
``tiny:latest``), ``registry`` (pullable), ``blobs`` (digest -> bytes) and ``running`` (loaded).
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Any, ClassVar, NamedTuple

from tests.fake_ollama.httpd import FakeHTTPServer, Handler
from tests.fake_ollama.wire import (
    TEXT_TYPE,
    VERSION,
    ApiError,
    RecordedRequest,
    Reply,
    RequestBody,
    Result,
    dumps,
    json_reply,
    line,
    quote,
    text_reply,
    timestamp,
)

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_TEMPLATE = "{{ .Prompt }}"
MODELS_DIR = "/usr/share/ollama/.ollama/models"
MEDIA = "application/vnd.ollama.image."
WEIGHT_MEDIA = (MEDIA + "model", MEDIA + "adapter")
KV_CACHE_BYTES = 23_000_000
COLD_LOAD_NS = 262_000_000
WARM_LOAD_NS = 1_500_000
FOREVER_S = 292 * 365 * 86_400

_NAME_PARTS = (
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,349}"),  # host[:port]
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}"),  # namespace
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # model
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # tag
)
_SIZE_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


# -- names -------------------------------------------------------------------------------------


class Name(NamedTuple):
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def key(self) -> str:
        """Shortest display form, always with a tag: the store key (``tiny:latest``)."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != "library":
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def parse_name(raw: str) -> Name | None:
    """Parse ``[host/][namespace/]model[:tag]`` like Ollama does; None if invalid."""
    text = raw.split("@", 1)[0]
    tag = "latest"
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
    parts = text.split("/")
    if len(parts) > 3:
        return None
    parts = [DEFAULT_HOST, "library"][: 3 - len(parts)] + parts
    name = Name(parts[0], parts[1], parts[2], tag)
    if all(rx.fullmatch(part) for rx, part in zip(_NAME_PARTS, name)):
        return name
    return None


def full_name(model: dict[str, Any]) -> str:
    """``registry.ollama.ai/library/tiny:latest`` for a stored model, as capability errors say."""
    parsed = parse_name(model["name"])
    return parsed.full if parsed else model["name"]


# -- layers and parameters ---------------------------------------------------------------------


def layer(media: str, data: bytes) -> dict[str, Any]:
    """The layer of ``data`` (its real digest and size)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"mediaType": MEDIA + media, "digest": digest, "size": len(data)}


def fake_layer(seed: str, size: int) -> dict[str, Any]:
    """A weights layer of ``size`` bytes that exist nowhere (its digest comes from ``seed``)."""
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return {"mediaType": MEDIA + "model", "digest": digest, "size": size}


def _go_number(value: Any) -> Any:
    """Integral floats marshal without a fraction in Go (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_go_number(item) for item in value]
    return value


def content_layers(
    template: str, system: str, params: dict[str, Any], licenses: list[str], messages: list[Any]
) -> list[dict[str, Any]]:
    """Template/system/params/license/messages layers with the digests Ollama would compute."""
    layers = []
    if template:
        layers.append(layer("template", template.encode()))
    if system:
        layers.append(layer("system", system.encode()))
    if params:
        encoded = dumps({k: _go_number(v) for k, v in params.items()}, sort_keys=True)
        layers.append(layer("params", (encoded + "\n").encode()))
    layers.extend(layer("license", text.encode()) for text in licenses)
    if messages:
        layers.append(layer("messages", line(messages)))
    return layers


def _param_value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    for convert in (int, float):
        with suppress(ValueError):
            return convert(raw)
    return {"true": True, "false": False}.get(raw, raw)


def parse_parameters(text: str) -> dict[str, Any]:
    """``key value`` lines (Modelfile PARAMETER or ``ollama show`` style) to a dict."""
    params: dict[str, Any] = {}
    for row in text.splitlines():
        key, _, raw = row.strip().partition(" ")
        if not key:
            continue
        value = _param_value(raw.strip())
        if key == "stop" or key in params:
            previous = params.get(key, [])
            params[key] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            params[key] = value
    return params


def _format_param(value: Any, quoted: bool) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and quoted:
        return quote(value)
    return str(value)


def _param_items(params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            yield key, item


def _parameter_count(size: str) -> int:
    with suppress(ValueError, IndexError):
        return int(float(size[:-1]) * _SIZE_SUFFIX[size[-1].upper()])
    return 0


def model_record(
    key: str,
    layers: list[dict[str, Any]],
    *,
    family: str = "llama",
    parameter_size: str = "1M",
    quantization_level: str = "F32",
    capabilities: list[str] | None = None,
    modified_at: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    system: str = "",
    parameters: dict[str, Any] | None = None,
    license: list[str] | None = None,
    messages: list[Any] | None = None,
) -> dict[str, Any]:
    """A model record: the /api/tags fields plus what /api/show, push and create need."""
    manifest = dumps([x["digest"] for x in layers])
    return {
        "name": key,
        "model": key,
        "modified_at": modified_at or timestamp(),
        "size": sum(x["size"] for x in layers),
        "digest": hashlib.sha256(manifest.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": parameter_size,
            "quantization_level": quantization_level,
        },
        "capabilities": list(capabilities or ["completion"]),
        "template": template,
        "system": system,
        "parameters": dict(parameters or {}),
        "license": list(license or []),
        "messages": list(messages or []),
        "layers": layers,
    }


# -- the store and its endpoints ---------------------------------------------------------------


class ModelStore(FakeHTTPServer):
    """Models on the server and in its registry; the endpoints that list, show, copy, delete."""

    def __init__(self, **http: Any) -> None:
        """``http``: the options of FakeHTTPServer (prefix, token, basic_auth, lifetime, port)."""
        super().__init__(**http)
        self.models: dict[str, dict[str, Any]] = {}
        self.registry: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.running: dict[str, dict[str, Any]] = {}
        #: What /api/version answers (think levels exist from 0.11.0).
        self.version = VERSION
        #: Length of every embedding (and of the models' embedding_length in /api/show).
        self.embedding_length = 8

    def add_model(
        self,
        name: str,
        *,
        size: int = 605_000,
        template: str = DEFAULT_TEMPLATE,
        system: str = "",
        parameters: str = "",
        license: str = "",
        **details: Any,
    ) -> dict[str, Any]:
        """Add a local model; ``size`` is its total size over all layers. Returns the record.

        ``parameters`` are Modelfile-style ``key value`` lines; ``details`` as for
        :func:`model_record` (family, parameter_size, quantization_level, capabilities,
        modified_at).
        """
        key = self._key(name)
        params = parse_parameters(parameters)
        licenses = [license] if license else []
        content = content_layers(template, system, params, licenses, [])
        weights = fake_layer(f"weights:{key}", max(size - sum(x["size"] for x in content), 1))
        record = model_record(
            key,
            [weights, *content],
            template=template,
            system=system,
            parameters=params,
            license=licenses,
            **details,
        )
        self.models[key] = record
        return record

    def add_registry_model(self, name: str, layers: list[int], **metadata: Any) -> None:
        """Make ``name`` pullable; ``layers`` are layer sizes, metadata as for ``add_model``."""
        key = self._key(name)
        if isinstance(metadata.get("parameters"), str):
            metadata["parameters"] = parse_parameters(metadata["parameters"])
        if isinstance(metadata.get("license"), str):
            metadata["license"] = [metadata["license"]] if metadata["license"] else []
        self.registry[key] = model_record(
            key, [fake_layer(f"{key}:{i}", size) for i, size in enumerate(layers)], **metadata
        )

    def _key(self, name: str) -> str:
        parsed = parse_name(name)
        if parsed is None:
            raise ValueError(f"invalid model name: {name!r}")
        return parsed.key

    def _local(self, raw: str) -> dict[str, Any] | None:
        parsed = parse_name(raw)
        return None if parsed is None else self.models.get(parsed.key)

    def _load(self, model: dict[str, Any], keep_alive: float) -> int:
        """Mark a model loaded (or unload it for keep_alive 0); returns the load duration."""
        key = model["name"]
        load_ns = WARM_LOAD_NS if key in self.running else COLD_LOAD_NS
        if keep_alive == 0:
            self.running.pop(key, None)
            return load_ns
        seconds = FOREVER_S if keep_alive < 0 else keep_alive
        self.running[key] = {
            "name": key,
            "model": key,
            "size": model["size"] + KV_CACHE_BYTES,
            "digest": model["digest"],
            "details": copy.deepcopy(model["details"]),
            "expires_at": timestamp(time.time_ns() + int(seconds * 1e9)),
            "size_vram": 0,
        }
        return load_ns

    # -- endpoints -------------------------------------------------------------------------

    def _root(self, request: RecordedRequest) -> Result:
        return text_reply(200, "Ollama is running", TEXT_TYPE)

    def _version(self, request: RecordedRequest) -> Result:
        return json_reply({"version": self.version})

    def _tags(self, request: RecordedRequest) -> Result:
        fields = ("name", "model", "modified_at", "size", "digest", "details")
        models = sorted(self.models.values(), key=lambda m: m["modified_at"], reverse=True)
        return json_reply({"models": [{k: m[k] for k in fields} for m in models]})

    def _ps(self, request: RecordedRequest) -> Result:
        running = sorted(self.running.values(), key=lambda m: m["expires_at"], reverse=True)
        return json_reply({"models": running})

    def _show(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "ShowRequest")
        raw = body.text("model", "name")
        if not raw:
            raise ApiError(400, "model is required")
        if parse_name(raw) is None:
            raise ApiError(400, "invalid model name")
        model = self._local(raw)
        if model is None:
            raise ApiError(404, f"model '{raw}' not found")
        return json_reply(self._show_body(model, bool(body.get("verbose"))))

    def _show_body(self, model: dict[str, Any], verbose: bool) -> dict[str, Any]:
        details, params = model["details"], model["parameters"]
        family = details["family"]
        weights = model["layers"][0]["digest"].replace(":", "-")
        lines = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {model['name']}",
            "",
            f"FROM {MODELS_DIR}/blobs/{weights}",
        ]
        if model["template"]:
            lines.append(f'TEMPLATE "{model["template"]}"')
        if model["system"]:
            lines.append(f'SYSTEM "{model["system"]}"')
        lines += [f"PARAMETER {k} {_format_param(v, False)}" for k, v in _param_items(params)]
        lines += [f'LICENSE """{text}"""' for text in model["license"]]
        lines += [f"MESSAGE {m.get('role')} {m.get('content')}" for m in model["messages"]]
        vocab = ["<unk>", "<s>", "</s>", *(f"<0x{i:02X}>" for i in range(8))]
        info: dict[str, Any] = {
            "general.architecture": family,
            "general.file_type": 0,
            "general.parameter_count": _parameter_count(details["parameter_size"]),
            f"{family}.block_count": 2,
            f"{family}.context_length": 2048,
            f"{family}.embedding_length": self.embedding_length,
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.scores": [0.0] * len(vocab) if verbose else None,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * (len(vocab) - 3) if verbose else None,
            "tokenizer.ggml.tokens": vocab if verbose else None,
        }
        show: dict[str, Any] = {}
        if model["license"]:
            show["license"] = "\n".join(model["license"])
        show["modelfile"] = "\n".join(lines) + "\n"
        if params:
            ordered = _param_items(dict(sorted(params.items())))
            show["parameters"] = "\n".join(f"{k:<30} {_format_param(v, True)}" for k, v in ordered)
        if model["template"]:
            show["template"] = model["template"]
        if model["system"]:
            show["system"] = model["system"]
        show["details"] = details
        if model["messages"]:
            show["messages"] = model["messages"]
        show["model_info"] = info
        show["tensors"] = [
            {
                "name": "token_embd.weight",
                "type": details["quantization_level"],
                "shape": [self.embedding_length, 514],
            },
            {"name": "output_norm.weight", "type": "F32", "shape": [self.embedding_length]},
        ]
        show["capabilities"] = model["capabilities"]
        show["modified_at"] = model["modified_at"]
        return show

    def _copy(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "CopyRequest")
        source, destination = body.text("source"), body.text("destination")
        src, dst = parse_name(source), parse_name(destination)
        if src is None:
            raise ApiError(400, f"source {quote(source)} is invalid")
        if dst is None:
            raise ApiError(400, f"destination {quote(destination)} is invalid")
        model = self.models.get(src.key)
        if model is None:
            raise ApiError(404, f"model {quote(source)} not found")
        duplicate = copy.deepcopy(model)
        duplicate.update(name=dst.key, model=dst.key, modified_at=timestamp())
        self.models[dst.key] = duplicate
        return Reply(200, content_type=None)

    def _delete(self, request: RecordedRequest) -> Result:
        body = RequestBody(request.body, "DeleteRequest")
        raw = body.text("model", "name")
        parsed = parse_name(raw)
        if parsed is None:
            raise ApiError(400, f"name {quote(raw)} is invalid")
        if self.models.pop(parsed.key, None) is None:
            raise ApiError(404, f"model '{raw}' not found")
        self.running.pop(parsed.key, None)
        return Reply(200, content_type=None)

    ROUTES: ClassVar[dict[str, dict[str, Handler]]] = {
        "/": {"GET": _root, "HEAD": _root},
        "/api/version": {"GET": _version, "HEAD": _version},
        "/api/tags": {"GET": _tags, "HEAD": _tags},
        "/api/ps": {"GET": _ps},
        "/api/show": {"POST": _show},
        "/api/copy": {"POST": _copy},
        "/api/delete": {"DELETE": _delete},
    }
