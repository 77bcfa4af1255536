"""Model names: ``[host/][namespace/]model[:tag]`` split, normalised and located."""

from __future__ import annotations

DEFAULT_REGISTRY = "registry.ollama.ai"


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
