"""Serve the fake Ollama until killed: ``python -m tests.fake_ollama --port 0 --models tiny``.

Prints ``READY <url>`` once listening (the benchmarks read it).
"""

from __future__ import annotations

import argparse
import sys

from tests.fake_ollama.server import OllamaTestServer


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    """Serve until killed or until --lifetime expires."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_ollama", description="Ollama-compatible test server"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument("--models", nargs="*", default=["tiny:latest"], help="local models")
    parser.add_argument("--registry-models", nargs="*", default=[], help="pullable models")
    parser.add_argument("--token-count", type=int, default=0, help="reply with N tokens")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds per token")
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    server = OllamaTestServer(
        prefix=args.prefix, token=args.token, lifetime=args.lifetime, port=args.port
    )
    for name in _names(args.models):
        server.add_model(name)
    for name in _names(args.registry_models):
        server.add_registry_model(name, [605_000, 124, 60, 414])
    server.generation.update(token_count=args.token_count, token_delay=args.token_delay)
    server.start()
    print(f"READY {server.url}", flush=True)
    try:
        server.wait_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
