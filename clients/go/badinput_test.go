package realm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	realm "github.com/realm-ai/realm/clients/go"
)

// Fake servers that misbehave: the client gives a typed error, never a hang.

func fakeWS(t *testing.T, hello string, then func(*websocket.Conn)) *realm.Client {
	up := websocket.Upgrader{Subprotocols: []string{"realm.v1"}}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(hello))
		then(ws)
	}))
	t.Cleanup(s.Close)
	return realm.NewClient(s.URL)
}

const goodHello = `{"type":"hello","protocol":"realm.v1","server":"fake","model":"m","max_in_flight":4,"max_message_bytes":1000,"idle_timeout_s":300}`

func TestBadInputWrongProtocolVersion(t *testing.T) {
	c := fakeWS(t, `{"type":"hello","protocol":"realm.v2"}`, func(*websocket.Conn) {})
	var pe *realm.ProtocolError
	if _, err := c.Connect(ctxT(t, 5*time.Second)); !errors.As(err, &pe) {
		t.Fatalf("%v (%T)", err, err)
	}
}

func TestBadInputGarbageFrame(t *testing.T) {
	c := fakeWS(t, goodHello, func(ws *websocket.Conn) {
		_, _, _ = ws.ReadMessage() // the chat
		_ = ws.WriteMessage(websocket.TextMessage, []byte("}{ not json"))
		_, _, _ = ws.ReadMessage()
	})
	ctx := ctxT(t, 5*time.Second)
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := conn.Chat(ctx, chatReq("hi", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Result(ctx)
	var cc *realm.ConnectionClosedError
	var pe *realm.ProtocolError
	if !errors.As(err, &cc) || cc.Code != 1002 || !errors.As(err, &pe) {
		t.Fatalf("%v (%T)", err, err)
	}
}

func TestBadInputOversizedMessageAndDrop(t *testing.T) {
	c := fakeWS(t, goodHello, func(ws *websocket.Conn) {
		_, _, _ = ws.ReadMessage()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"created","id":"r1","model":"m","prompt_tokens":3}`))
		_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "slow consumer"))
	})
	ctx := ctxT(t, 5*time.Second)
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := chatReq(string(make([]byte, 2000)), 2, 1)
	if _, err := conn.Chat(ctx, big); !realm.IsBadRequest(err) {
		t.Fatalf("oversized: %v", err)
	}
	r, err := conn.Chat(ctx, chatReq("hi", 2, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Result(ctx)
	var cc *realm.ConnectionClosedError
	if !errors.As(err, &cc) || cc.Code != 4001 {
		t.Fatalf("%v (%T)", err, err)
	}
}

func TestBadInputSSE(t *testing.T) {
	for name, body := range map[string]string{
		"truncated": "data: {\"choices\":[]}\n\n",
		"garbage":   "data: {nope\n\n",
		"error":     "data: {\"error\":{\"message\":\"boom\",\"code\":\"internal\"}}\n\n",
	} {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, body)
		}))
		st, err := realm.NewClient(s.URL).ChatCompletionStream(context.Background(), chatReq("hi", 2, 1))
		if err != nil {
			t.Fatal(err)
		}
		for st.Next() {
		}
		err = st.Err()
		ok := map[string]bool{"truncated": realm.IsConnection(err), "garbage": realm.IsConnection(err), "error": realm.IsInternal(err)}[name]
		if !ok {
			t.Errorf("%s: %v (%T)", name, err, err)
		}
		s.Close()
	}
}

func TestHTTPErrorBodyAndRetryAfter(t *testing.T) {
	n := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(503)
		fmt.Fprint(w, `{"error":{"message":"queue full","type":"server_error","code":"server_overloaded","param":null}}`)
	}))
	defer s.Close()
	c := realm.NewClient(s.URL, realm.WithMaxRetries(1))
	_, err := c.Models(ctxT(t, 10*time.Second))
	var e *realm.APIError
	if !realm.IsOverloaded(err) || !errors.As(err, &e) || e.RetryAfter != time.Second || n != 2 {
		t.Fatalf("%v, %d tries", err, n)
	}
}
