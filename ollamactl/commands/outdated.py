"""``ollamactl outdated``: which of the server's models their registry has a newer manifest of."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import click

from ollamactl import render
from ollamactl.app import App, echo_json, pass_app, warn
from ollamactl.completion import complete_models
from ollamactl.errors import ExitCode, ModelNotFound
from ollamactl.names import model_key
from ollamactl.options import insecure_option, json_option
from ollamactl.registry import OUTDATED, UNREACHABLE, Comparison, Reference, Registry, compare

#: Registries asked at once.
WORKERS = 4


def _local_models(app: App, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, digest) of the models to check: those named, else every model on the server."""
    models = {model_key(str(m.get("name", ""))): m for m in app.client.tags()}
    if not names:
        return [(str(m.get("name", "")), str(m.get("digest", ""))) for m in models.values()]
    chosen = []
    for name in names:
        model = models.get(model_key(name))
        if model is None:
            raise ModelNotFound(f"model '{name}' not found")
        chosen.append((str(model.get("name", "")), str(model.get("digest", ""))))
    return list(dict.fromkeys(chosen))


def _parent_model(app: App, name: str) -> str:
    details = app.client.show(name).get("details") or {}
    return str(details.get("parent_model") or "")


def check_models(app: App, names: tuple[str, ...], *, insecure: bool) -> list[Comparison]:
    """Compare the models with their registries (asked concurrently), in the order given."""
    models = _local_models(app, names)
    references = [Reference.parse(name) for name, _ in models]
    with Registry(insecure=insecure) as registry, ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(registry.fetch, references))
    return [
        compare(name, digest, answer, lambda name=name: _parent_model(app, name))
        for (name, digest), answer in zip(models, answers)
    ]


def _table(results: list[Comparison]) -> str:
    rows = [[r.name, r.local_digest[:12], (r.remote_digest or "-")[:12], r.status] for r in results]
    return render.table(rows, header=["NAME", "LOCAL", "REMOTE", "STATUS"])


@click.command()
@click.argument("models", nargs=-1, metavar="[MODEL]...", shell_complete=complete_models)
@insecure_option
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when a model is outdated, else 3 when a registry could not be asked"
    " (as git diff --exit-code).",
)
@json_option("every model's check, with full digests and the manifest URL")
@pass_app
def outdated(
    app: App, models: tuple[str, ...], insecure: bool, exit_code: bool, as_json: bool
) -> None:
    """List the models whose registry has a newer version.

    Asks each model's registry (registry.ollama.ai unless the name has a host)
    for the manifest of its tag, and compares it with the server's copy:
    current, outdated, local-only (made on the server: the registry does not
    have it, or has another model of that name) or unreachable (the reason is
    printed on stderr). The registry is asked from this machine, not from the
    server, without the server's token or headers. With --insecure, registries
    other than registry.ollama.ai are asked over plain http (as pull --insecure).

    Exits 0 whatever it finds, as `pip list --outdated`; with --exit-code,
    1 when a model is outdated, else 3 when a registry could not be asked.

    \b
    Examples:
      ollamactl outdated
      ollamactl outdated llama3.2 qwen3:8b
      ollamactl outdated --insecure 127.0.0.1:5000/library/tiny
      ollamactl outdated --json | jq -r '.models[] | select(.status == "outdated") | .name'
      ollamactl outdated --exit-code || ollamactl pull llama3.2
    """
    results = check_models(app, models, insecure=insecure)
    if as_json:
        echo_json({"models": [asdict(result) for result in results]})
    else:
        click.echo(_table(results), nl=False)
    failures = sorted({result.reason for result in results if result.status == UNREACHABLE})
    for reason in failures:
        warn(reason)
    if not exit_code:
        return
    if any(result.status == OUTDATED for result in results):
        raise click.exceptions.Exit(1)
    if failures:
        raise click.exceptions.Exit(int(ExitCode.CONNECTION))
