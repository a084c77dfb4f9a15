// Package realm is a Go client of realm-server: its OpenAI-compatible HTTP API (whole answers,
// and streamed over server-sent events) and its realm.v1 WebSocket protocol (many requests on
// one connection, each with a channel of events, cancellable). See README.md.
package realm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one realm-server. It is safe for concurrent use.
type Client struct {
	baseURL      string
	apiKey       string
	httpClient   *http.Client
	maxRetries   int
	maxRetryWait time.Duration
	timeout      time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sets the key sent as `Authorization: Bearer KEY` (none when empty).
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithHTTPClient sets the *http.Client (default: one with no overall timeout, so that streams
// may last; use WithTimeout or a context for deadlines).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithMaxRetries sets how many times a request is retried (default 2). Only what is safe is
// retried: a connection that could not be made (nothing was sent), and a refusal the server
// made before doing anything (429 rate_limit_exceeded, 503 server_overloaded / shutting_down),
// after its Retry-After when that is at most the WithMaxRetryWait, else with backoff.
func WithMaxRetries(n int) Option { return func(c *Client) { c.maxRetries = n } }

// WithMaxRetryWait sets the longest Retry-After the client waits for before retrying (default
// 10 s); a longer one is returned as the error.
func WithMaxRetryWait(d time.Duration) Option { return func(c *Client) { c.maxRetryWait = d } }

// WithTimeout bounds each whole (non-streamed) request, retries included (default none).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// NewClient returns a client of the server at baseURL (http://host:port; a trailing /v1 is
// accepted).
func NewClient(baseURL string, opts ...Option) *Client {
	u := strings.TrimRight(baseURL, "/")
	u = strings.TrimSuffix(u, "/v1")
	c := &Client{baseURL: u, httpClient: &http.Client{}, maxRetries: 2, maxRetryWait: 10 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL is the server's address, without /v1.
func (c *Client) BaseURL() string { return c.baseURL }

// ChatCompletion sends a chat request and returns the whole answer (req.Stream is ignored).
func (c *Client) ChatCompletion(ctx context.Context, req *ChatCompletionRequest) (*ChatCompletion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out ChatCompletion
	if err := c.doJSON(ctx, http.MethodPost, "/v1/chat/completions", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Completion sends a text completion request and returns the whole answer.
func (c *Client) Completion(ctx context.Context, req *CompletionRequest) (*Completion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out Completion
	if err := c.doJSON(ctx, http.MethodPost, "/v1/completions", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Models lists the served models (GET /v1/models).
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	var out ModelList
	if err := c.doJSON(ctx, http.MethodGet, "/v1/models", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health returns the server's status: "ok" (nil error), or "loading" / "draining" with an
// *APIError (503). It needs no key and is not retried.
func (c *Client) Health(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/health", nil, 0)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &ConnectionError{Op: "read", Err: err}
	}
	_ = json.Unmarshal(body, &h)
	if resp.StatusCode != http.StatusOK {
		e := errorFromBody(resp, body)
		return h.Status, e
	}
	if h.Status == "" {
		return "", &ProtocolError{Msg: fmt.Sprintf("unexpected /health answer %.100q", body)}
	}
	return h.Status, nil
}

// ChatCompletionStream starts a streamed chat request (SSE). Read it with Next/Current/Err and
// Close it; cancelling ctx or closing the stream closes the response, and the server cancels
// the request. StreamOptions.IncludeUsage is set unless req sets StreamOptions.
func (c *Client) ChatCompletionStream(ctx context.Context, req *ChatCompletionRequest) (*Stream[ChatCompletionChunk], error) {
	r := *req
	r.Stream = true
	if r.StreamOptions == nil {
		r.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	return openStream[ChatCompletionChunk](ctx, c, "/v1/chat/completions", r)
}

// CompletionStream starts a streamed text completion (SSE); see ChatCompletionStream.
func (c *Client) CompletionStream(ctx context.Context, req *CompletionRequest) (*Stream[Completion], error) {
	r := *req
	r.Stream = true
	if r.StreamOptions == nil {
		r.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	return openStream[Completion](ctx, c, "/v1/completions", r)
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, method, path, body, c.maxRetries)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ConnectionError{Op: "read", Err: err}
	}
	if resp.StatusCode >= 400 {
		return errorFromBody(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &ProtocolError{Msg: fmt.Sprintf("unreadable answer to %s %s: %v: %.100q", method, path, err, data)}
	}
	return nil
}

// send makes the request, retrying only where safe; a status ≥ 400 is returned as an error,
// except for /health, whose 503 has a body to read.
func (c *Client) send(ctx context.Context, method, path string, body []byte, retries int) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json, text/event-stream")
		if c.apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+c.apiKey)
		}
		resp, err := c.httpClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if attempt < retries && isDialError(err) {
				if werr := sleep(ctx, backoff(attempt)); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, &ConnectionError{Op: method + " " + path, Err: err}
		}
		if resp.StatusCode < 400 || path == "/health" {
			return resp, nil
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		apiErr := errorFromBody(resp, data)
		if attempt < retries && IsRetryable(apiErr) {
			d := apiErr.RetryAfter
			if d == 0 {
				d = backoff(attempt)
			}
			if d <= c.maxRetryWait {
				if werr := sleep(ctx, d); werr != nil {
					return nil, werr
				}
				continue
			}
		}
		return nil, apiErr
	}
}

func errorFromBody(resp *http.Response, data []byte) *APIError {
	var eb errorBody
	code, typ, param, msg := "", "", "", ""
	if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
		typ, msg = eb.Error.Type, eb.Error.Message
		if eb.Error.Code != nil {
			code = *eb.Error.Code
		}
		if eb.Error.Param != nil {
			param = *eb.Error.Param
		}
	} else if len(data) > 0 {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	e := newAPIError(resp.StatusCode, code, typ, param, msg, parseRetryAfter(resp.Header.Get("Retry-After")))
	e.RequestID = resp.Header.Get("X-Request-Id")
	return e
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue) && strings.Contains(ue.Error(), "connection refused")
}

func backoff(attempt int) time.Duration {
	base := 500 * time.Millisecond << uint(attempt)
	if base > 8*time.Second {
		base = 8 * time.Second
	}
	return time.Duration(float64(base) * (0.75 + rand.Float64()*0.5))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
