"""OpenAI's Responses API (text only) on the real server, through the official `openai` client:
whole and streamed, instructions, message input, and its errors; structured output
(`text.format`: `json_schema` validated by the independent `jsonschema` package, `json_object`),
over HTTP and the WebSocket mode, and its echo in the response."""

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

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
    assert r.text.format.type == "text" and final.text.format.type == "text"
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


PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "kind": {"enum": ["cat", "dog", "bird", "fish"]},
        "legs": {"type": "integer", "minimum": 0, "maximum": 8},
        "toys": {"type": "array", "items": {"type": "string", "maxLength": 15}, "maxItems": 3},
    },
    "required": ["name", "kind", "legs", "toys"],
    "additionalProperties": False,
}
PET_FORMAT = {"type": "json_schema", "name": "pet", "schema": PET, "strict": True}


def validate_pet(text: str) -> None:
    jsonschema.Draft202012Validator(PET).validate(json.loads(text))


def echoed(fmt) -> dict:
    return fmt.model_dump(by_alias=True, exclude_none=True)


def test_json_schema_whole_and_streamed(client):
    kw = dict(model=MODEL_ID, input="Describe a pet.", max_output_tokens=120, temperature=0.7,
              extra_body={"seed": 3}, text={"format": PET_FORMAT})
    r = client.responses.create(**kw)
    assert r.status == "completed", r.output_text
    validate_pet(r.output_text)
    assert echoed(r.text.format) == PET_FORMAT
    events = list(client.responses.create(stream=True, **kw))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert echoed(events[0].response.text.format) == PET_FORMAT
    assert echoed(events[-1].response.text.format) == PET_FORMAT
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == events[-1].response.output_text == r.output_text
    validate_pet(streamed)


class Pet(BaseModel):
    name: str = Field(max_length=20)
    legs: int = Field(ge=0, le=8)


def test_json_object_and_parse(client):
    r = client.responses.create(model=MODEL_ID, input="Give a cat's name and age as JSON.", max_output_tokens=120,
                                temperature=0, text={"format": {"type": "json_object"}})
    assert r.status == "completed", r.output_text
    assert isinstance(json.loads(r.output_text), dict)
    assert echoed(r.text.format) == {"type": "json_object"}
    # The official client's parse: the schema of a pydantic model, the answer parsed back into it.
    p = client.responses.parse(model=MODEL_ID, input="Describe a pet.", max_output_tokens=120, temperature=0.7,
                               extra_body={"seed": 1}, text_format=Pet)
    assert isinstance(p.output_parsed, Pet) and p.text.format.name == "Pet"


def test_text_format_errors(client):
    cases = [
        ({"type": "json_schema", "name": "x", "schema": {"type": "nope"}}, "text.format.schema"),
        ({"type": "json_schema", "name": "x", "schema": {"type": "string", "minLength": 3, "maxLength": 1}}, "text.format.schema"),
        ({"type": "json_schema", "name": "x"}, "text.format.schema"),
        ({"type": "xml"}, "text.format.type"),
    ]
    for fmt, param in cases:
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as e:
                client.responses.create(model=MODEL_ID, input="x", max_output_tokens=4, stream=stream, text={"format": fmt})
            assert e.value.status_code == 400 and e.value.body["param"] == param, (fmt, e.value.body)
            assert e.value.body["message"], fmt


def test_json_schema_over_the_websocket(client):
    with client.responses.connect() as conn:
        conn.response.create(model=MODEL_ID, input="Describe a pet.", max_output_tokens=120, temperature=0,
                             text={"format": PET_FORMAT})
        types, final = [], None
        for e in conn:
            types.append(e.type)
            if e.type == "response.created":
                assert echoed(e.response.text.format) == PET_FORMAT
            if e.type in ("response.completed", "response.incomplete", "error"):
                final = e
                break
        assert final.type == "response.completed", (types, final)
        validate_pet(final.response.output_text)
        assert echoed(final.response.text.format) == PET_FORMAT
        # An invalid schema is an error event naming it; the connection goes on.
        conn.response.create(model=MODEL_ID, input="x", text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "nope"}}})
        e = conn.recv()
        assert e.type == "error" and e.param == "text.format.schema", e
