"""Model names: ``[host/][namespace/]model[:tag]`` split, normalised and located."""

from __future__ import annotations

import re

DEFAULT_REGISTRY = "registry.ollama.ai"
#: What each part of a name may be, as Ollama checks it (``types/model/name.go``).
_VALID_PARTS = (
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),  # host
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),  # namespace
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # model
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),  # tag
)


def split_name(name: str) -> tuple[str, str, str, str]:
    """``[host/][namespace/]model[:tag]`` as (host, namespace, model, tag), with Ollama's defaults.

    >>> split_name("llama3.2")
    ('registry.ollama.ai', 'library', 'llama3.2', 'latest')
    >>> split_name("127.0.0.1:5000/me/tiny:v1")
    ('127.0.0.1:5000', 'me', 'tiny', 'v1')
    """
    text = name.split("@", 1)[0]
    tag = "latest"
    colon = text.rfind(":")
    if colon > text.rfind("/"):
        text, tag = text[:colon], text[colon + 1 :]
    parts = text.split("/")
    if len(parts) < 3:
        parts = [DEFAULT_REGISTRY, "library"][: 3 - len(parts)] + parts
    return parts[0], parts[1], "/".join(parts[2:]), tag


def model_key(name: str) -> str:
    """The form ``/api/tags`` lists a model under, lower-cased for comparison.

    >>> model_key("Tiny"), model_key("registry.ollama.ai/library/tiny:latest")
    ('tiny:latest', 'tiny:latest')
    >>> model_key("me/tiny:v1"), model_key("127.0.0.1:5000/library/tiny")
    ('me/tiny:v1', '127.0.0.1:5000/library/tiny:latest')
    """
    host, namespace, model, tag = split_name(name.strip())
    if host != DEFAULT_REGISTRY:
        key = f"{host}/{namespace}/{model}:{tag}"
    elif namespace != "library":
        key = f"{namespace}/{model}:{tag}"
    else:
        key = f"{model}:{tag}"
    return key.lower()


def push_destination(model: str) -> str:
    """Where a pushed model can be found: its ollama.com page, or its full name.

    >>> push_destination("me/tiny"), push_destination("127.0.0.1:5000/me/tiny")
    ('https://ollama.com/me/tiny', '127.0.0.1:5000/me/tiny:latest')
    """
    host, namespace, name, tag = split_name(model)
    if host.endswith((".ollama.ai", ".ollama.com")):
        shortest = name if namespace == "library" else f"{namespace}/{name}"
        return f"https://ollama.com/{shortest}" + ("" if tag == "latest" else f":{tag}")
    return f"{host}/{namespace}/{name}:{tag}"


def is_valid_name(name: str) -> bool:
    """Whether Ollama takes ``name`` as a model name (Go's ``model.ParseName(name).IsValid()``).

    >>> is_valid_name("tiny"), is_valid_name("127.0.0.1:5000/me/tiny:v1")
    (True, True)
    >>> is_valid_name("/root/.ollama/models/blobs/sha256-738f"), is_valid_name("a/b/c/d")
    (False, False)
    """

    def cut_last(text: str, separator: str) -> tuple[str, str, bool]:
        before, found, after = text.rpartition(separator)
        if not found:
            return text, "", False
        return before or "!", after or "!", True  # Go's MissingPart: never valid

    text, tag = name, "latest"
    if text.rfind(":") > text.rfind("/"):
        text, tag, _ = cut_last(text, ":")
    text, model, cut = cut_last(text, "/")
    host, namespace = DEFAULT_REGISTRY, "library"
    if not cut:
        model = text
    else:
        text, namespace, cut = cut_last(text, "/")
        if not cut:
            namespace = text
        else:
            host = (text.partition("://")[2] if "://" in text else text) or DEFAULT_REGISTRY
    parts = (host, namespace, model, tag)
    return all(pattern.fullmatch(part) for pattern, part in zip(_VALID_PARTS, parts))
