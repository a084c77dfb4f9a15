"""realm-server driven by the official `openai` Python package on the real model: chat and
completions, streamed and not, usage, logprobs, stop, seeds, n, every error status, and the
same answers as the library (the `realm` CLI) alone and in a batch of 8."""

import concurrent.futures
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import CLI_BIN, KEY, LIMITED_KEY, MODEL

MODEL_ID = MODEL.stem
MSG = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def post(server, path, body: bytes, key=KEY, ctype="application/json"):
    req = urllib.request.Request(server.url + path, data=body, method="POST")
    req.add_header("Content-Type", ctype)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_health_and_models(client, server):
    with urllib.request.urlopen(server.url + "/health") as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]


def test_chat_whole_and_streamed_agree(client):
    whole = client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=24, temperature=0)
    c = whole.choices[0]
    assert c.message.role == "assistant" and c.message.content
    assert c.finish_reason in ("stop", "length")
    u = whole.usage
    assert u.completion_tokens > 0 and u.prompt_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    stream = client.chat.completions.create(
        model=MODEL_ID, messages=MSG, max_tokens=24, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == c.message.content
    assert finish == c.finish_reason
    assert usage.completion_tokens == u.completion_tokens


def test_usage_counts_prompt_tokens_from_the_prefix_cache(client):
    # A prompt of several whole KV blocks (32 positions each), sent twice: the second time its
    # full blocks come from the prefix cache, and usage says how many tokens.
    system = "You are a careful assistant. " * 20
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": "Say yes."}]
    first = client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=2, temperature=0)
    again = client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=2, temperature=0)
    assert first.usage.prompt_tokens > 96
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached >= 96 and cached % 32 == 0 and cached < again.usage.prompt_tokens


def test_completions_and_echo(client):
    r = client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert "Paris" in r.choices[0].text
    assert r.usage.completion_tokens == 8 and r.choices[0].finish_reason == "length"
    e = client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0, echo=True)
    assert e.choices[0].text == "The capital of France is" + r.choices[0].text
    parts = [
        ch.choices[0].text
        for ch in client.completions.create(model=MODEL_ID, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True)
        if ch.choices
    ]
    assert "".join(parts) == r.choices[0].text


def test_logprobs(client):
    r = client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert t.top_logprobs[0].token == t.token
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5
    assert "".join(t.token for t in content) == r.choices[0].message.content
    c = client.completions.create(model=MODEL_ID, prompt="One, two,", max_tokens=4, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.top_logprobs[0]) <= 2 and lp.text_offset[0] == 0


def test_stop_strings(client):
    r = client.completions.create(model=MODEL_ID, prompt="1, 2, 3, 4,", max_tokens=32, temperature=0, stop=[" 7"])
    assert r.choices[0].finish_reason == "stop"
    assert " 7" not in r.choices[0].text and "6" in r.choices[0].text


def test_seed_reproducibility_and_n(client):
    kw = dict(model=MODEL_ID, messages=MSG, max_tokens=16, temperature=1.0)
    a = client.chat.completions.create(seed=42, **kw).choices[0].message.content
    b = client.chat.completions.create(seed=42, **kw).choices[0].message.content
    assert a == b
    r = client.chat.completions.create(seed=7, n=2, **kw)
    assert [c.index for c in r.choices] == [0, 1]
    # Choice i is seeded seed + i: choice 1 of seed 7 is choice 0 of seed 8.
    c8 = client.chat.completions.create(seed=8, **kw).choices[0].message.content
    assert r.choices[1].message.content == c8


def test_error_statuses(client, server):
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=2)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL_ID, messages=MSG, temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MSG, max_tokens=2)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "word " * 5000}], max_tokens=2)
    assert e.value.body["code"] == "context_length_exceeded"
    # Wrong types name the field; malformed JSON, invalid UTF-8, unknown routes.
    s, _, b = post(server, "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}')
    assert s == 400 and b["error"]["param"] == "max_tokens"
    s, _, b = post(server, "/v1/chat/completions", b'{"messages": [')
    assert s == 400 and b["error"]["type"] == "invalid_request_error"
    s, _, b = post(server, "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}')
    assert s == 400
    s, _, b = post(server, "/v1/nothing", b"{}")
    assert s == 404 and b["error"]["code"] == "not_found"
    s, _, b = post(server, "/v1/chat/completions", b'{"messages": [' + b'{"role": "user", "content": "x"},' * 10000 + b'{"role": "user", "content": "x"}]}')
    assert s == 400 and b["error"]["param"] == "messages"
    # A body over the limit is refused from its Content-Length, before it is read.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.putheader("Content-Length", str(5 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "payload_too_large"
    conn.close()
    s, _, b = post(server, "/v1/completions", b'{"prompt": "x", "n": 0}')
    assert s == 400 and b["error"]["param"] == "n"


def test_tenant_limits(server):
    lim = openai.OpenAI(base_url=server.url + "/v1", api_key=LIMITED_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        lim.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=100)
    assert e.value.body["param"] == "max_tokens"
    statuses = []
    for _ in range(4):
        try:
            lim.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=2)
            statuses.append(200)
        except openai.RateLimitError as err:
            statuses.append(429)
            assert int(err.response.headers["retry-after"]) >= 1
    assert statuses.count(429) >= 1 and statuses[0] == 200


def test_tokenize_round_trip(server):
    s, _, b = post(server, "/tokenize", json.dumps({"content": "Hello world"}).encode())
    assert s == 200 and b["tokens"]
    s, _, d = post(server, "/detokenize", json.dumps({"tokens": b["tokens"]}).encode())
    assert s == 200 and d["content"] == "Hello world"
    s, _, d = post(server, "/detokenize", json.dumps({"tokens": [10**9]}).encode())
    assert s == 400 and d["error"]["param"] == "tokens[0]"


def realm_generate(prompt: str, n: int) -> str:
    out = subprocess.run(
        [str(CLI_BIN), "generate", str(MODEL), "-p", prompt, "-n", str(n), "--json", "--threads", "2"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["text"]


PROMPTS = [
    "The quick brown fox",
    "Once upon a time, in a land far away,",
    "def fibonacci(n):",
    "The three primary colours are",
    "Water boils at",
    "My favourite book is",
    "In 1969, astronauts",
    "The best way to learn a language is",
]


def test_same_answers_as_the_library_alone_and_batched(client):
    ask = lambda p: client.completions.create(model=MODEL_ID, prompt=p, max_tokens=20, temperature=0).choices[0].text
    assert ask(PROMPTS[0]) == realm_generate(PROMPTS[0], 20)
    alone = [ask(p) for p in PROMPTS]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, PROMPTS))
    assert together == alone


def test_client_that_vanishes_frees_its_sequence(client, server):
    stream = client.chat.completions.create(model=MODEL_ID, messages=MSG, max_tokens=400, temperature=0, stream=True)
    got = 0
    for _ in stream:
        got += 1
        if got == 3:
            break
    stream.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        m = server.metrics()
        if m.get("realm_num_requests_running", 1) == 0 and m.get("realm_kv_cache_usage_perc", 1) == 0:
            break
        time.sleep(0.05)
    assert m["realm_num_requests_running"] == 0 and m["realm_kv_cache_usage_perc"] == 0
    assert m.get('realm_request_success_total{finished_reason="cancelled",tenant="main"}', 0) >= 1
