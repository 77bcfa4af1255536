"""The HTTP layer against mocked transports (responses): status mapping, streams, retries."""

from __future__ import annotations

import json
import re

import pytest
import requests
import responses
from responses import matchers

from ollamactl import __version__
from ollamactl.client import Client
from ollamactl.config import Flags, resolve
from ollamactl.errors import (
    APIError,
    AuthFailed,
    BadResponse,
    ConnectionFailed,
    ModelNotFound,
)
from tests.helpers import NGINX_502

BASE = "https://gw.example.com/ollama-api"


def make_client(**flags: object) -> Client:
    return Client(resolve(Flags(host=BASE, retries=0, **flags), env={}))  # type: ignore[arg-type]


def ndjson(*events: dict[str, object]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.fixture
def mocked() -> responses.RequestsMock:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_sends_token_headers_and_user_agent_to_the_prefixed_path(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(
        f"{BASE}/api/tags",
        json={"models": [{"name": "tiny:latest"}]},
        match=[
            matchers.header_matcher(
                {
                    "Authorization": "Bearer tok-1",
                    "X-Team": "ml",
                    "User-Agent": f"ollamactl/{__version__}",
                }
            )
        ],
    )
    client = make_client(api_key="tok-1", headers=("X-Team: ml",))
    assert client.tags() == [{"name": "tiny:latest"}]


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, {"error": "unauthorized"}, AuthFailed, "refused the request (HTTP 401)"),
        (403, "", AuthFailed, "refused the request (HTTP 403)"),
        (404, {"error": "model 'x' not found"}, ModelNotFound, "model 'x' not found"),
        (500, {"error": "boom"}, APIError, "boom"),
        (502, NGINX_502, BadResponse, "answered HTTP 502 Bad Gateway with an HTML page"),
        (404, "404 page not found", BadResponse, "is the base URL right?"),
    ],
)
def test_status_codes_map_to_errors(
    mocked: responses.RequestsMock, status: int, body: object, error: type, text: str
) -> None:
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    mocked.post(f"{BASE}/api/show", status=status, **kwargs)
    with pytest.raises(error) as e:
        make_client().show("x")
    assert text in str(e.value)
    assert e.value.status == status


def test_auth_hint_names_the_credential_source_not_its_value(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(f"{BASE}/api/tags", status=401, json={"error": "unauthorized"})
    with pytest.raises(AuthFailed) as e:
        make_client(api_key="secret-value-9").tags()
    assert "the API key from --api-key" in str(e.value)
    assert "secret-value-9" not in str(e.value)


def test_stream_yields_events_and_raises_in_band_errors(mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
        ),
        content_type="application/x-ndjson",
    )
    events = make_client().pull("missing")
    assert next(events) == {"status": "pulling manifest"}
    with pytest.raises(ModelNotFound, match="pull model manifest: file does not exist"):
        next(events)


def test_in_band_error_that_is_not_not_found_is_an_api_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(f"{BASE}/api/chat", body=ndjson({"error": "an upstream error"}))
    with pytest.raises(APIError, match="an upstream error"):
        list(make_client().chat("m", []))


def test_malformed_line_is_a_bad_response(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/api/generate", body='{"response":"a"}\n{"respo\n')
    with pytest.raises(BadResponse, match="not JSON"):
        list(make_client().generate("m", "p"))


def test_get_retries_on_503_then_succeeds(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/version", status=503, body="busy")
    mocked.get(f"{BASE}/api/version", json={"version": "0.9.3"})
    client = Client(resolve(Flags(host=BASE, retries=2), env={}))
    assert client.version() == {"version": "0.9.3"}


def test_post_is_never_retried(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/api/copy", status=503, json={"error": "server busy"})
    client = Client(resolve(Flags(host=BASE, retries=3), env={}))
    with pytest.raises(APIError, match="server busy"):
        client.copy("a", "b")
    assert len(mocked.calls) == 1


def test_connection_error_names_the_host(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/tags", body=requests.exceptions.ConnectionError("Connection refused"))
    with pytest.raises(
        ConnectionFailed,
        match=re.escape(
            "could not connect to https://gw.example.com/ollama-api: connection refused"
        ),
    ):
        make_client().tags()


def test_redirect_to_another_origin_drops_every_credential(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/tags", status=302, headers={"Location": "https://evil.example.net/x"})
    mocked.get("https://evil.example.net/x", json={"models": []})
    make_client(api_key="tok-1", headers=("X-Auth-Token: t2", "X-Team: ml")).tags()
    sent = mocked.calls[1].request.headers
    assert "Authorization" not in sent and "X-Auth-Token" not in sent and "X-Team" not in sent


def test_redirect_within_the_origin_keeps_the_token(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/api/tags", status=302, headers={"Location": f"{BASE}/api/tags2"})
    mocked.get(f"{BASE}/api/tags2", json={"models": []})
    make_client(api_key="tok-1").tags()
    assert mocked.calls[1].request.headers["Authorization"] == "Bearer tok-1"


def test_blob_exists_uses_head(mocked: responses.RequestsMock) -> None:
    mocked.head(f"{BASE}/api/blobs/sha256:aa", status=200)
    mocked.head(f"{BASE}/api/blobs/sha256:bb", status=404)
    client = make_client()
    assert client.blob_exists("sha256:aa") is True
    assert client.blob_exists("sha256:bb") is False
