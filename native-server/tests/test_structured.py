"""Structured output on the real models, through the official `openai` client: answers under
`response_format: json_schema` (nested objects, arrays with min/max items, enums, anyOf,
string formats, required fields, additionalProperties: false) validated by an independent
validator (Python's `jsonschema`, Draft 2020-12, formats checked), streamed and not, on both
models; `json_object`; a GBNF grammar (`grammar`) and the same in Lark (`lark`) for arithmetic
expressions, checked by Python's own parser; a regex; the realm.v1 WebSocket; a batch of 8
concurrent requests with 8 different schemas; invalid constraints are 400s naming the field."""

import ast
import concurrent.futures
import json

import jsonschema
import openai
import pytest
import websockets.sync.client

from conftest import CACHE, KEY, METRICS_KEY, Server

SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 40}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["city", "zip"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "age", "address"],
        "additionalProperties": False,
    },
    "shopping": {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "minItems": 2,
                "maxItems": 4,
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 30}, "qty": {"type": "integer", "minimum": 1, "maximum": 20}},
                    "required": ["name", "qty"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    },
    "weather": {
        "type": "object",
        "properties": {
            "sky": {"enum": ["sunny", "cloudy", "rainy", "snowy"]},
            "wind": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 200}, {"type": "null"}]},
        },
        "required": ["sky", "wind"],
        "additionalProperties": False,
    },
    "event": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 50},
            "date": {"type": "string", "format": "date"},
            "id": {"type": "string", "format": "uuid"},
        },
        "required": ["title", "date", "id"],
        "additionalProperties": False,
    },
    "choice": {
        "anyOf": [
            {"type": "object", "properties": {"yes": {"type": "boolean"}}, "required": ["yes"], "additionalProperties": False},
            {"type": "object", "properties": {"reason": {"type": "string", "maxLength": 60}}, "required": ["reason"], "additionalProperties": False},
        ]
    },
    "tags": {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "minItems": 1, "maxItems": 3}},
        "required": ["tags"],
        "additionalProperties": False,
    },
    "matrix": {
        "type": "object",
        "properties": {"rows": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": -9, "maximum": 9}}}},
        "required": ["rows"],
        "additionalProperties": False,
    },
    "flags": {
        "type": "object",
        "properties": {"debug": {"type": "boolean"}, "level": {"enum": [1, 2, 3]}, "note": {"type": ["string", "null"], "maxLength": 20}},
        "required": ["debug", "level", "note"],
        "additionalProperties": False,
    },
}
PROMPTS = {
    "person": "Invent a person with an address.",
    "shopping": "Write a short shopping list.",
    "weather": "Describe today's weather.",
    "event": "Describe an event.",
    "choice": "Is water wet?",
    "tags": "Pick some colours.",
    "matrix": "Give a 2x2 matrix.",
    "flags": "Give some settings.",
}

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def validate(name: str, text: str) -> None:
    value = json.loads(text)  # raises if it is not JSON
    jsonschema.Draft202012Validator(SCHEMAS[name], format_checker=FORMATS).validate(value)


def fmt(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name], "strict": True}}


GEMMA = CACHE / "models/gemma-3-270m-Q4_K_M.gguf"


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def model_client(request, server):
    """A client of the session's server (SmolLM2) and of one on Gemma 3 started here."""
    if request.param == "smollm2":
        yield openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120), server
        return
    s = Server(["--api-key", KEY, "--metrics-key", METRICS_KEY, "--max-running", "8", "-c", "4096"], "realm-server-gemma", model=GEMMA)
    try:
        s.wait_ready()
        yield openai.OpenAI(base_url=s.url + "/v1", api_key=KEY, max_retries=0, timeout=120), s
    finally:
        assert s.stop() == 0, s.logs()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_json_schema_answers_validate(model_client, name):
    client, _ = model_client
    for stream in (False, True):
        for temperature in (0.0, 0.8):
            kw = dict(messages=[{"role": "user", "content": PROMPTS[name]}], max_tokens=200, temperature=temperature, seed=11, response_format=fmt(name))
            if stream:
                chunks = list(client.chat.completions.create(model="", stream=True, **kw))
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][-1]
            else:
                r = client.chat.completions.create(model="", **kw)
                text, finish = r.choices[0].message.content, r.choices[0].finish_reason
            assert finish == "stop", (name, stream, temperature, text)
            validate(name, text)


def test_streamed_equals_whole(client_smollm2):
    kw = dict(messages=[{"role": "user", "content": PROMPTS["person"]}], max_tokens=200, temperature=0.8, seed=5, response_format=fmt("person"))
    whole = client_smollm2.chat.completions.create(model="", **kw).choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in client_smollm2.chat.completions.create(model="", stream=True, **kw) if c.choices)
    assert streamed == whole
    validate("person", whole)


@pytest.fixture(scope="module")
def client_smollm2(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def test_json_object_and_completions(client_smollm2):
    r = client_smollm2.chat.completions.create(model="", 
        messages=[{"role": "user", "content": "Describe a cat."}], max_tokens=150, temperature=0.7, seed=2, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    # completions take it too
    c = client_smollm2.completions.create(
        model="", prompt="A JSON object describing a dog:", max_tokens=150, temperature=0, extra_body={"response_format": fmt("tags")}
    )
    validate("tags", c.choices[0].text)


def arithmetic_ok(text: str) -> bool:
    """An expression of integers, +, -, * and parentheses, by Python's own parser."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    allowed = (ast.Expression, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Constant)
    return all(isinstance(n, allowed) for n in ast.walk(tree)) and all(
        isinstance(n.value, int) for n in ast.walk(tree) if isinstance(n, ast.Constant)
    )


GBNF = r"""
root ::= expr
expr ::= term (("+" | "-") term)*
term ::= factor ("*" factor)*
factor ::= [1-9] [0-9]{0,2} | "(" expr ")"
"""
LARK = r"""
start: expr
expr: term (("+" | "-") term)*
term: factor ("*" factor)*
factor: /[1-9][0-9]{0,2}/ | "(" expr ")"
"""


@pytest.mark.parametrize("field,grammar", [("grammar", GBNF), ("lark", LARK)])
def test_grammar_answers_parse(client_smollm2, field, grammar):
    for seed in range(4):
        for stream in (False, True):
            kw = dict(
                messages=[{"role": "user", "content": "Write a long arithmetic expression."}],
                max_tokens=40,
                temperature=0.9,
                seed=seed,
                extra_body={field: grammar},
            )
            if stream:
                r = list(client_smollm2.chat.completions.create(model="", stream=True, **kw))
                text = "".join(c.choices[0].delta.content or "" for c in r if c.choices)
                finish = [c.choices[0].finish_reason for c in r if c.choices and c.choices[0].finish_reason][-1]
            else:
                r = client_smollm2.chat.completions.create(model="", **kw)
                text, finish = r.choices[0].message.content, r.choices[0].finish_reason
            # cut at max_tokens, the text is a prefix of an expression; ended, a whole one
            assert set(text) <= set("0123456789+-*()"), text
            if finish == "stop":
                assert arithmetic_ok(text), text


def test_regex(client_smollm2):
    r = client_smollm2.chat.completions.create(model="", 
        messages=[{"role": "user", "content": "Give a phone number."}], max_tokens=20, temperature=0.8, seed=1, extra_body={"regex": r"\(\d{3}\) \d{3}-\d{4}"}
    )
    import re

    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", r.choices[0].message.content), r.choices[0].message.content


def test_batch_of_8_different_schemas(client_smollm2, server):
    names = sorted(SCHEMAS)
    assert len(names) == 8
    before = server.metrics().get("realm_constrained_masks_total", 0)

    def one(name):
        r = client_smollm2.chat.completions.create(model="", 
            messages=[{"role": "user", "content": PROMPTS[name]}], max_tokens=200, temperature=0.7, seed=3, response_format=fmt(name)
        )
        return name, r.choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        for name, text in ex.map(one, names):
            validate(name, text)
    m = server.metrics()
    assert m["realm_constrained_masks_total"] > before
    assert m["realm_constrained_mask_seconds_total"] > 0


def test_realm_v1_websocket(server):
    with websockets.sync.client.connect(server.url.replace("http", "ws") + "/v1/ws", additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        json.loads(ws.recv())  # hello
        ws.send(json.dumps({"type": "chat", "id": "s1", "request": {"messages": [{"role": "user", "content": PROMPTS["weather"]}], "max_tokens": 100, "seed": 4, "response_format": fmt("weather")}}))
        ws.send(json.dumps({"type": "chat", "id": "bad", "request": {"messages": [{"role": "user", "content": "x"}], "regex": "(unclosed"}}))
        text, bad = "", None
        while True:
            m = json.loads(ws.recv())
            if m.get("id") == "bad":
                bad = m
            elif m["type"] == "delta":
                text += m["text"]
            elif m["type"] == "done":
                break
        validate("weather", text)
        assert bad and bad["type"] == "error" and bad["code"] == "invalid_request" and bad["param"] == "request.regex", bad


def test_invalid_constraints_are_400_naming_the_field(client_smollm2):
    cases = [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}}, "response_format.json_schema.schema"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema.schema"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"grammar": "root ::= (\"a\""}, "grammar"),
        ({"lark": "start: missing_rule"}, "lark"),
        ({"regex": "[unclosed"}, "regex"),
        ({"json_schema": {"type": "string", "minLength": 3, "maxLength": 1}}, "json_schema"),
        ({"json_schema": {"type": "array", "uniqueItems": True}}, "json_schema"),  # not supported: said so
        ({"regex": "a+", "grammar": "root ::= \"a\""}, None),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client_smollm2.chat.completions.create(model="", messages=[{"role": "user", "content": "x"}], max_tokens=4, extra_body=body)
        err = e.value.body
        assert e.value.status_code == 400, body
        if param is not None:
            assert err["param"].startswith(param), (body, err)
        assert err["message"], body
