"""The realm.v1 WebSocket protocol on the real server: three requests multiplexed on one
connection and one of them cancelled, the same greedy text as over HTTP, and the protocol's
answers to bad frames (unreadable JSON, binary frames, wrong keys, a wrong subprotocol)."""

import json

import openai
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import KEY, MODEL

MODEL_ID = MODEL.stem


def ws_connect(server, key=KEY, open_timeout=30):
    url = server.url.replace("http://", "ws://") + "/v1/ws"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(url, subprotocols=["realm.v1"], additional_headers=headers, open_timeout=open_timeout)


def recv(ws):
    return json.loads(ws.recv(timeout=120))


def chat(id, content, max_tokens, **extra):
    req = {"model": MODEL_ID, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "temperature": 0, **extra}
    return json.dumps({"type": "chat", "id": id, "request": req})


def test_three_multiplexed_requests_and_a_cancel(server):
    http = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    with ws_connect(server) as ws:
        assert ws.subprotocol == "realm.v1"
        hello = recv(ws)
        assert hello["type"] == "hello" and hello["protocol"] == "realm.v1" and hello["model"] == MODEL_ID
        ws.send(chat("a", "Name three colours.", 24))
        ws.send(chat("b", "Write a long story about a dragon.", 400))
        ws.send(chat("c", "What is 2 + 2?", 16, n=2))
        texts, done, created, cancelled = {}, {}, set(), False
        while len(done) < 3:
            m = recv(ws)
            if m["type"] == "created":
                created.add(m["id"])
            elif m["type"] == "delta":
                texts.setdefault((m["id"], m["index"]), []).append(m["text"])
                assert len(m["tokens"]) <= 1
                if m["id"] == "b" and not cancelled:
                    ws.send(json.dumps({"type": "cancel", "id": "b"}))
                    ws.send(json.dumps({"type": "cancel", "id": "b"}))  # twice: a no-op
                    cancelled = True
            elif m["type"] == "done":
                done[m["id"]] = m
            else:
                pytest.fail(f"unexpected message {m}")
        assert created == {"a", "b", "c"}
        assert done["b"]["choices"][0]["finish_reason"] == "cancelled"
        assert done["b"]["usage"]["completion_tokens"] < 400
        assert [c["index"] for c in done["c"]["choices"]] == [0, 1]
        assert done["a"]["choices"][0]["finish_reason"] in ("stop", "length")
        # Greedy: the same text as over HTTP, and both choices of c alike.
        want = http.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "Name three colours."}], max_tokens=24, temperature=0
        ).choices[0].message.content
        assert "".join(texts[("a", 0)]) == want
        assert texts[("c", 0)] == texts[("c", 1)]
        # The connection still serves after all that; ping is answered.
        ws.send(json.dumps({"type": "ping", "data": "x"}))
        assert recv(ws) == {"type": "pong", "data": "x"}


def test_bad_messages_get_errors_and_the_connection_lives(server):
    with ws_connect(server) as ws:
        recv(ws)
        ws.send("{not json")
        e = recv(ws)
        assert e["type"] == "error" and e["code"] == "invalid_request" and "id" not in e
        ws.send(json.dumps({"type": "chat", "id": "t", "request": {"messages": [], "max_tokens": 2}}))
        e = recv(ws)
        assert e["type"] == "error" and e["id"] == "t" and e["param"] == "request.messages"
        ws.send(json.dumps({"type": "chat", "id": "t", "request": {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}}))
        e = recv(ws)
        assert e["code"] == "invalid_request" and e["param"] == "request.temperature"
        ws.send(chat("ok", "Hi", 2))
        assert recv(ws)["type"] == "created"


def test_binary_frames_close_with_1003(server):
    with ws_connect(server) as ws:
        recv(ws)
        ws.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as e:
            while True:
                ws.recv(timeout=30)
        assert e.value.rcvd.code == 1003


def test_wrong_key_and_wrong_subprotocol_are_refused(server):
    with pytest.raises(InvalidStatus) as e:
        ws_connect(server, key="nope")
    assert e.value.response.status_code == 401
    url = server.url.replace("http://", "ws://") + "/v1/ws"
    with pytest.raises(InvalidStatus) as e:
        connect(url, subprotocols=["realm.v0"], additional_headers={"Authorization": f"Bearer {KEY}"})
    assert e.value.response.status_code == 400
    # Browsers cannot set headers: the key may come as a query parameter.
    with connect(url + f"?api_key={KEY}", subprotocols=["realm.v1"]) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"


def test_close_handshakes_complete(server):
    ws = ws_connect(server)
    recv(ws)
    ws.close()
    # The server answered our close frame (not a dropped connection).
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


def test_websockets_hold_connection_slots():
    import contextlib

    from conftest import Server

    s = Server(["--api-key", KEY, "--max-connections", "3"], "realm-server-slots")
    try:
        s.wait_ready()
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                recv(stack.enter_context(ws_connect(s)))
            # Every slot is held by a WebSocket: a fourth connection waits in the listen queue.
            with pytest.raises(TimeoutError):
                ws_connect(s, open_timeout=2)
        # Slots come back when the WebSockets close.
        with ws_connect(s) as ws:
            assert recv(ws)["type"] == "hello"
    finally:
        assert s.stop() == 0, s.logs()
