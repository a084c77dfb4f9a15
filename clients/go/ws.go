package realm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the WebSocket subprotocol this client speaks.
const Subprotocol = "realm.v1"

// Hello is the server's first message on a realm.v1 connection.
type Hello struct {
	Protocol        string `json:"protocol"`
	Server          string `json:"server"`
	Model           string `json:"model"`
	MaxInFlight     int    `json:"max_in_flight"`
	MaxMessageBytes int    `json:"max_message_bytes"`
	IdleTimeoutS    int    `json:"idle_timeout_s"`
}

// DoneChoice is one choice of a `done` message.
type DoneChoice struct {
	Index        int      `json:"index"`
	FinishReason string   `json:"finish_reason"`
	Timings      *Timings `json:"timings,omitempty"`
}

// Event is a message of the server about one request: Type is "created" (Model, PromptTokens),
// "delta" (Index, Text, Tokens, Logprobs) or "done" (Choices, Usage), the last. A request that
// fails ends without "done": its Err is an *APIError or a *ConnectionClosedError.
type Event struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Model        string          `json:"model,omitempty"`
	PromptTokens int             `json:"prompt_tokens,omitempty"`
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	Tokens       []int           `json:"tokens,omitempty"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	Choices      []DoneChoice    `json:"choices,omitempty"`
	Usage        *Usage          `json:"usage,omitempty"`
}

// wsMessage is any server message.
type wsMessage struct {
	Event
	Protocol    string  `json:"protocol"`
	Code        string  `json:"code"`
	Message     string  `json:"message"`
	Param       string  `json:"param"`
	RetryAfterS float64 `json:"retry_after_s"`
	Data        *string `json:"data"`
}

// Conn is a realm.v1 WebSocket connection carrying many requests at once. It is safe for
// concurrent use. When it drops, every request in flight fails with a *ConnectionClosedError
// carrying the close code, and so does every later call.
type Conn struct {
	ws    *websocket.Conn
	hello Hello

	writeMu sync.Mutex

	mu       sync.Mutex
	reqs     map[string]*Request
	pings    []chan pingAnswer
	nextID   uint64
	closeErr *ConnectionClosedError
	done     chan struct{}
}

type pingAnswer struct {
	data *string
	err  error
}

// Connect opens a realm.v1 connection (ws://host:port/v1/ws, the key in Authorization) and
// reads the server's hello. A refused handshake is an *APIError (401 invalid_api_key, 503, …);
// an unreachable server a *ConnectionError; a server that does not speak realm.v1 a
// *ProtocolError. ctx bounds the handshake only.
func (c *Client) Connect(ctx context.Context) (*Conn, error) {
	u := c.baseURL
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	h := http.Header{}
	if c.apiKey != "" {
		h.Set("Authorization", "Bearer "+c.apiKey)
	}
	d := websocket.Dialer{Subprotocols: []string{Subprotocol}, HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, u+"/v1/ws", h)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if resp != nil && resp.StatusCode >= 400 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			return nil, errorFromBody(resp, body)
		}
		if resp != nil {
			return nil, &ProtocolError{Msg: fmt.Sprintf("WebSocket handshake answered %s", resp.Status)}
		}
		return nil, &ConnectionError{Op: "connect", Err: err}
	}
	if p := ws.Subprotocol(); p != "" && p != Subprotocol {
		ws.Close()
		return nil, &ProtocolError{Msg: "the server selected the subprotocol " + strconv.Quote(p)}
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ws.SetReadDeadline(deadline)
	var hello wsMessage
	var helloBody Hello
	mt, data, err := ws.ReadMessage()
	if err == nil && mt != websocket.TextMessage {
		err = &ProtocolError{Msg: "a binary frame instead of hello"}
	}
	if err == nil {
		if jerr := json.Unmarshal(data, &hello); jerr != nil || hello.Event.Type != "hello" || json.Unmarshal(data, &helloBody) != nil {
			err = &ProtocolError{Msg: fmt.Sprintf("expected hello, got %.100q", data)}
		} else if hello.Protocol != Subprotocol {
			err = &ProtocolError{Msg: "the server speaks " + strconv.Quote(hello.Protocol) + ", not realm.v1"}
		}
	}
	if err != nil {
		ws.Close()
		var pe *ProtocolError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, &ConnectionError{Op: "hello", Err: err}
	}
	_ = ws.SetReadDeadline(time.Time{})
	if helloBody.MaxMessageBytes > 0 {
		ws.SetReadLimit(int64(helloBody.MaxMessageBytes) * 4)
	}
	conn := &Conn{ws: ws, hello: helloBody, reqs: map[string]*Request{}, done: make(chan struct{})}
	go conn.readLoop()
	return conn, nil
}

// Hello is the server's hello.
func (c *Conn) Hello() Hello { return c.hello }

// InFlight is the number of requests that have not ended.
func (c *Conn) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

// Done is closed when the connection has closed; Err then says how.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is nil while the connection is open, then its *ConnectionClosedError.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr == nil {
		return nil
	}
	return c.closeErr
}

// Closed reports whether the connection has closed.
func (c *Conn) Closed() bool { return c.Err() != nil }

// Close closes the connection (code 1000); the server cancels its requests, and the requests
// in flight fail with a *ConnectionClosedError.
func (c *Conn) Close() error {
	// WriteControl may run beside WriteMessage (gorilla/websocket's rule)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.shutdown(&ConnectionClosedError{Code: websocket.CloseNormalClosure, Reason: "closed by the client"})
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	return nil
}

// Chat starts a chat request on the connection (the body of POST /v1/chat/completions; the
// stream fields are ignored). Cancelling ctx cancels the request on the server.
func (c *Conn) Chat(ctx context.Context, req *ChatCompletionRequest) (*Request, error) {
	return c.start(ctx, "chat", req)
}

// Complete starts a text completion request on the connection.
func (c *Conn) Complete(ctx context.Context, req *CompletionRequest) (*Request, error) {
	return c.start(ctx, "complete", req)
}

func (c *Conn) start(ctx context.Context, typ string, body any) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closeErr != nil {
		err := c.closeErr
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := "r" + strconv.FormatUint(c.nextID, 10)
	r := newRequest(c, id)
	c.reqs[id] = r
	c.mu.Unlock()
	msg := struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Request any    `json:"request"`
	}{typ, id, body}
	if err := c.send(msg); err != nil {
		c.mu.Lock()
		delete(c.reqs, id)
		c.mu.Unlock()
		r.finish(err)
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			r.Cancel()
		case <-r.ended:
		}
	}()
	return r, nil
}

// Ping sends a realm.v1 `ping` message and waits for its `pong` (which also keeps an idle
// connection open); it returns the pong's data.
func (c *Conn) Ping(ctx context.Context, data string) (string, error) {
	ch := make(chan pingAnswer, 1)
	// queued and written under writeMu, so that the pongs' order is the pings' order
	c.writeMu.Lock()
	c.mu.Lock()
	if c.closeErr != nil {
		err := c.closeErr
		c.mu.Unlock()
		c.writeMu.Unlock()
		return "", err
	}
	c.pings = append(c.pings, ch)
	c.mu.Unlock()
	err := c.writeLocked(map[string]any{"type": "ping", "data": data})
	c.writeMu.Unlock()
	if err != nil {
		return "", err
	}
	select {
	case a := <-ch:
		if a.err != nil {
			return "", a.err
		}
		if a.data == nil {
			return "", nil
		}
		return *a.data, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *Conn) send(v any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(v)
}

func (c *Conn) writeLocked(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if max := c.hello.MaxMessageBytes; max > 0 && len(b) > max {
		return newAPIError(413, CodePayloadTooLarge, "", "", fmt.Sprintf("the message is %d bytes, over the server's max_message_bytes %d", len(b), max), 0)
	}
	if err := c.Err(); err != nil {
		return err
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		// the connection is broken: the read loop fails everything with the close code
		c.ws.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			c.shutdown(&ConnectionClosedError{Code: websocket.CloseAbnormalClosure, Reason: "write failed", Err: err})
		}
		return c.Err()
	}
	return nil
}

func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			ce := &ConnectionClosedError{Code: websocket.CloseAbnormalClosure, Reason: "connection lost", Err: err}
			var wce *websocket.CloseError
			if errors.As(err, &wce) {
				ce.Code, ce.Reason, ce.Err = wce.Code, wce.Text, nil
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				ce.Code, ce.Reason = websocket.CloseMessageTooBig, "a server message over the read limit"
			}
			c.shutdown(ce)
			c.ws.Close()
			return
		}
		if mt != websocket.TextMessage {
			c.protocolFailure(&ProtocolError{Msg: "the server sent a binary frame"})
			return
		}
		var m wsMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Event.Type == "" {
			c.protocolFailure(&ProtocolError{Msg: fmt.Sprintf("unreadable message %.100q", data)})
			return
		}
		c.handle(&m)
	}
}

func (c *Conn) protocolFailure(pe *ProtocolError) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, "unreadable message"), time.Now().Add(time.Second))
	c.shutdown(&ConnectionClosedError{Code: websocket.CloseProtocolError, Reason: "protocol error", Err: pe})
	c.ws.Close()
}

func (c *Conn) handle(m *wsMessage) {
	switch m.Event.Type {
	case "pong":
		c.mu.Lock()
		var ch chan pingAnswer
		if len(c.pings) > 0 {
			ch, c.pings = c.pings[0], c.pings[1:]
		}
		c.mu.Unlock()
		if ch != nil {
			ch <- pingAnswer{data: m.Data}
		}
	case "created", "delta", "done", "error":
		c.mu.Lock()
		r := c.reqs[m.Event.ID]
		final := m.Event.Type == "done" || m.Event.Type == "error"
		if r != nil && final {
			delete(c.reqs, m.Event.ID)
		}
		c.mu.Unlock()
		if r == nil {
			return // an error about an unreadable message of ours, or an unknown id
		}
		switch m.Event.Type {
		case "error":
			e := newAPIError(0, m.Code, "", m.Param, m.Message, time.Duration(m.RetryAfterS*float64(time.Second)))
			r.finish(e)
		case "done":
			r.push(m.Event)
			r.finish(nil)
		default:
			r.push(m.Event)
		}
	default: // hello again, or a message type of a later version: ignored
	}
}

func (c *Conn) shutdown(ce *ConnectionClosedError) {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return
	}
	c.closeErr = ce
	reqs := c.reqs
	c.reqs = map[string]*Request{}
	pings := c.pings
	c.pings = nil
	c.mu.Unlock()
	for _, r := range reqs {
		r.finish(ce)
	}
	for _, p := range pings {
		p <- pingAnswer{err: ce}
	}
}

// Request is one request on a Conn. Read its events from Events (closed after the last one;
// then Err says how it ended), or call Next, or Result for the whole answer.
type Request struct {
	ID   string
	conn *Conn

	mu      sync.Mutex
	queue   []Event
	err     error
	isEnded bool
	notify  chan struct{}
	ended   chan struct{} // closed when the server's last message (or the connection's end) came
	events  chan Event
	stop    chan struct{} // closed by Close: stop delivering
	once    sync.Once
}

func newRequest(c *Conn, id string) *Request {
	r := &Request{ID: id, conn: c, notify: make(chan struct{}, 1), ended: make(chan struct{}),
		events: make(chan Event, 64), stop: make(chan struct{})}
	go r.pump()
	return r
}

func (r *Request) push(ev Event) {
	r.mu.Lock()
	r.queue = append(r.queue, ev)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *Request) finish(err error) {
	r.mu.Lock()
	if r.isEnded {
		r.mu.Unlock()
		return
	}
	r.isEnded, r.err = true, err
	r.mu.Unlock()
	close(r.ended)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// pump moves the queued events into the channel, without ever blocking the connection's reader.
func (r *Request) pump() {
	defer close(r.events)
	for {
		r.mu.Lock()
		if len(r.queue) > 0 {
			ev := r.queue[0]
			r.queue = r.queue[1:]
			r.mu.Unlock()
			select {
			case r.events <- ev:
				continue
			case <-r.stop:
				return
			}
		}
		ended := r.isEnded
		r.mu.Unlock()
		if ended {
			return
		}
		select {
		case <-r.notify:
		case <-r.stop:
			return
		}
	}
}

// Events is the request's events, closed after the last one; then Err says how it ended.
func (r *Request) Events() <-chan Event { return r.events }

// Next returns the next event, or io.EOF after `done`, or the request's error.
func (r *Request) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-r.events:
		if ok {
			return ev, nil
		}
		if err := r.Err(); err != nil {
			return Event{}, err
		}
		return Event{}, io.EOF
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// Err is how the request ended: nil while running or after `done`; an *APIError for the
// server's `error`; a *ConnectionClosedError when the connection dropped.
func (r *Request) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Ended is closed when the request has ended (its events may still be unread).
func (r *Request) Ended() <-chan struct{} { return r.ended }

// Cancel asks the server to stop the request; it then ends with `done` and finish reason
// "cancelled" (deltas already sent may come first). Cancelling an ended request does nothing.
func (r *Request) Cancel() error {
	select {
	case <-r.ended:
		return nil
	default:
	}
	return r.conn.send(map[string]string{"type": "cancel", "id": r.ID})
}

// Close cancels the request if it still runs and stops delivering its events.
func (r *Request) Close() {
	_ = r.Cancel()
	r.once.Do(func() { close(r.stop) })
}

// Result is a finished request: each choice's whole text, finish reason and timings, the usage.
type Result struct {
	ID           string
	Model        string
	PromptTokens int
	Texts        []string // by choice index
	Choices      []DoneChoice
	Usage        *Usage
}

// Text is the first choice's text.
func (r *Result) Text() string {
	if len(r.Texts) == 0 {
		return ""
	}
	return r.Texts[0]
}

// Result reads the request to its end and returns the whole answer. If ctx ends first, the
// request is cancelled on the server and ctx's error returned.
func (r *Request) Result(ctx context.Context) (*Result, error) {
	res := &Result{ID: r.ID}
	for {
		ev, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				r.Close()
			}
			return nil, err
		}
		switch ev.Type {
		case "created":
			res.Model, res.PromptTokens = ev.Model, ev.PromptTokens
		case "delta":
			for len(res.Texts) <= ev.Index {
				res.Texts = append(res.Texts, "")
			}
			res.Texts[ev.Index] += ev.Text
		case "done":
			res.Choices, res.Usage = ev.Choices, ev.Usage
			for len(res.Texts) < len(ev.Choices) {
				res.Texts = append(res.Texts, "")
			}
		}
	}
}
