"""The openai SDK's embeddings through the sidecar: base64 and float, dimensions, similarity."""

from __future__ import annotations

import openai
import pytest

from proxy.mock.vectors import cosine
from tests.conftest import APP_KEY, NO_RETRY, StartSidecar, openai_client, real_spec
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

MOCK_ONLY = {"mock": {"seed": 7}, "traffic": {"realWeight": 0}}


async def test_mock_default_base64_decodes_to_unit_vectors(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(MOCK_ONLY)
    client = openai_client(sidecar)
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="red running shoes"
    )
    wire = raw.http_response.json()
    assert isinstance(wire["data"][0]["embedding"], str), "the SDK asked for base64 and got it"
    result = raw.parse()
    assert raw.headers["x-llm-backend"] == "mock"
    vector = result.data[0].embedding
    assert len(vector) == 1536
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-4
    assert result.usage.prompt_tokens > 0
    requests = sidecar.runtime.metrics.requests
    assert requests.labels("openai.embeddings", "mock", "mock", "200")._value.get() == 1
    tokens = sidecar.runtime.metrics.tokens
    model = "text-embedding-3-small"
    assert tokens.labels("embeddings", "openai", model, "input", "mock")._sum.get() > 0
    assert tokens.labels("embeddings", "openai", model, "output", "mock")._sum.get() == 0


async def test_mock_similarity_behaves_like_a_real_model(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    texts = [
        "red running shoes for trail races",
        "red running shoes for trail races",
        "trail running shoes in red",
        "quarterly tax filing deadline reminder",
    ]
    result = await client.embeddings.create(model="text-embedding-3-small", input=texts)
    same, again, related, unrelated = (d.embedding for d in result.data)
    assert [d.index for d in result.data] == [0, 1, 2, 3]
    assert same == again, "same text, same vector"
    assert cosine(same, related) > 0.5
    assert abs(cosine(same, unrelated)) < 0.2
    later = await client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    assert later.data[0].embedding == same, "stable across requests and batch positions"


async def test_mock_float_and_dimensions(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-large", input="a lamp", encoding_format="float"
    )
    assert isinstance(raw.http_response.json()["data"][0]["embedding"], list)
    assert len(raw.parse().data[0].embedding) == 3072, "the large model's native width"
    small = await client.embeddings.create(
        model="text-embedding-3-large", input="a lamp", dimensions=256
    )
    assert len(small.data[0].embedding) == 256


async def test_mock_token_array_input(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    result = await client.embeddings.create(
        model="text-embedding-3-small", input=[[1820, 25, 1028], [1820, 25, 1028]]
    )
    assert len(result.data) == 2
    assert result.data[0].embedding == result.data[1].embedding


async def test_mock_rejects_empty_strings(start_sidecar: StartSidecar) -> None:
    client = openai_client(await start_sidecar(MOCK_ONLY))
    with pytest.raises(openai.BadRequestError, match="empty strings"):
        await client.embeddings.create(model="text-embedding-3-small", input=["ok", ""])


@pytest.mark.parametrize(
    ("asked", "sent"),
    [({}, "base64"), ({"encoding_format": "float"}, "float")],
    ids=["sdk-default-base64", "float"],
)
async def test_real_passthrough(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, asked: dict[str, str], sent: str
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai))
    client = openai_client(sidecar)
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["one", "two"], dimensions=4, **asked
    )
    result = raw.parse()
    assert raw.headers["x-llm-backend"] == "openai-primary"
    assert [d.embedding for d in result.data] == [[0.125] * 4, [0.25] * 4]
    seen = fake_openai.requests[-1]
    assert seen.path == "/v1/embeddings"
    assert seen.headers["Authorization"] == "Bearer sk-real-openai-test-0000000000"
    assert APP_KEY not in str(seen.headers)
    assert seen.json["encoding_format"] == sent
    tokens = sidecar.runtime.metrics.tokens
    model = "text-embedding-3-small"
    assert tokens.labels("embeddings", "openai", model, "input", "openai-primary")._sum.get() == 7


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, openai.AuthenticationError), (429, openai.RateLimitError)],
)
async def test_real_errors_reach_the_sdk_typed(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, status: int, error: type[Exception]
) -> None:
    client = openai_client(await start_sidecar(real_spec(fake_openai, **NO_RETRY)))
    fake_openai.faults.append(Fault(status=status))
    with pytest.raises(error, match=f"scripted {status}"):
        await client.embeddings.create(model="text-embedding-3-small", input="x")
