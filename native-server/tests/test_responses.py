"""OpenAI's Responses API (text only) on the real server, through the official `openai` client:
whole and streamed, instructions, message input, and its errors."""

import openai
import pytest

from conftest import KEY, MODEL

MODEL_ID = MODEL.stem


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def test_whole_and_streamed_agree(client):
    kw = dict(model=MODEL_ID, input="Name three colours.", instructions="Answer briefly.", max_output_tokens=16, temperature=0)
    r = client.responses.create(**kw)
    assert r.object == "response" and r.status in ("completed", "incomplete")
    assert r.output_text and r.usage.output_tokens > 0 and r.usage.input_tokens > 0
    types, text, final = [], "", None
    for e in client.responses.create(stream=True, **kw):
        types.append(e.type)
        if e.type == "response.output_text.delta":
            text += e.delta
        if e.type in ("response.completed", "response.incomplete"):
            final = e.response
    assert types[0] == "response.created" and types[-1] in ("response.completed", "response.incomplete")
    assert "response.output_text.delta" in types
    assert text == r.output_text == final.output_text
    # The same as the chat API with the same conversation.
    chat = client.chat.completions.create(
        model=MODEL_ID, max_tokens=16, temperature=0,
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name three colours."}],
    )
    assert chat.choices[0].message.content == r.output_text


def test_message_input_and_errors(client):
    r = client.responses.create(
        model=MODEL_ID, max_output_tokens=4, temperature=0,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
    )
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL_ID, input="x", temperature=9)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL_ID, input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}])
    assert e.value.body["param"] == "input[0].content[0]"
