package realm_test

// clients/SCENARIOS.md, S1..S6, against the real realm-server on the real model.

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	realm "github.com/realm-ai/realm/clients/go"
)

func msgs(s string) []realm.Message { return []realm.Message{{Role: "user", Content: s}} }

func newClient(t *testing.T, key string, opts ...realm.Option) *realm.Client {
	t.Helper()
	return realm.NewClient(srv(t).URL, append([]realm.Option{realm.WithAPIKey(key), realm.WithMaxRetries(0)}, opts...)...)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func chatReq(prompt string, maxTokens int, seed int64) *realm.ChatCompletionRequest {
	return &realm.ChatCompletionRequest{Messages: msgs(prompt),
		Sampling: realm.Sampling{MaxTokens: realm.Ptr(maxTokens), Seed: realm.Ptr(seed), Temperature: realm.Ptr(0.7)}}
}

func longReq() *realm.ChatCompletionRequest {
	return &realm.ChatCompletionRequest{Messages: msgs("Name three colours."),
		Sampling: realm.Sampling{MaxTokens: realm.Ptr(2000), IgnoreEOS: true}}
}

// S1 -- a streamed chat answer equals the server's non-streamed answer for the same seed.
func TestS1StreamEqualsWholeAnswer(t *testing.T) {
	c := newClient(t, testKey)
	ctx := ctxT(t, 60*time.Second)
	req := chatReq("Name three colours.", 24, 7)
	whole, err := c.ChatCompletion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := whole.Choices[0].Message.Content
	if want == "" {
		t.Fatal("empty whole answer")
	}
	s, err := c.ChatCompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var text, finish string
	var usage *realm.Usage
	var timings *realm.Timings
	for s.Next() {
		ch := s.Current()
		if ch.Usage != nil {
			usage = ch.Usage
		}
		if ch.Timings != nil {
			timings = ch.Timings
		}
		for _, choice := range ch.Choices {
			text += choice.Delta.Content
			if choice.FinishReason != "" {
				finish = choice.FinishReason
			}
			if choice.Timings != nil {
				timings = choice.Timings
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if text != want {
		t.Fatalf("streamed %q, whole %q", text, want)
	}
	if finish != whole.Choices[0].FinishReason {
		t.Fatalf("finish %q vs %q", finish, whole.Choices[0].FinishReason)
	}
	if usage == nil || whole.Usage == nil || usage.CompletionTokens != whole.Usage.CompletionTokens {
		t.Fatalf("usage %+v vs %+v", usage, whole.Usage)
	}
	if timings == nil || len(whole.Timings) == 0 || timings.PredictedN != whole.Timings[0].PredictedN {
		t.Fatalf("timings %+v vs %+v", timings, whole.Timings)
	}
	// and over realm.v1
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := conn.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text() != want || res.Choices[0].FinishReason != finish {
		t.Fatalf("realm.v1 %q/%s, whole %q/%s", res.Text(), res.Choices[0].FinishReason, want, finish)
	}
	if res.Usage.CompletionTokens != whole.Usage.CompletionTokens || res.Choices[0].Timings.PredictedN != whole.Timings[0].PredictedN {
		t.Fatalf("realm.v1 usage %+v", res.Usage)
	}
}

// S2 -- three requests at once on one connection, each answered in full and as if alone.
func TestS2ThreeConcurrentRequestsOnOneConnection(t *testing.T) {
	c := newClient(t, testKey)
	ctx := ctxT(t, 60*time.Second)
	prompts := []string{"Name three colours.", "Count to five.", "Say hi."}
	var alone []string
	for _, p := range prompts {
		w, err := c.ChatCompletion(ctx, chatReq(p, 16, 3))
		if err != nil {
			t.Fatal(err)
		}
		alone = append(alone, w.Choices[0].Message.Content)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var reqs []*realm.Request
	ids := map[string]bool{}
	for _, p := range prompts {
		r, err := conn.Chat(ctx, chatReq(p, 16, 3))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
		ids[r.ID] = true
	}
	if len(ids) != 3 {
		t.Fatalf("ids %v", ids)
	}
	if n := conn.InFlight(); n != 3 {
		t.Fatalf("in flight: %d", n)
	}
	// all three read concurrently, from their channels
	type out struct {
		i   int
		res *realm.Result
		err error
	}
	ch := make(chan out, 3)
	for i, r := range reqs {
		go func(i int, r *realm.Request) { res, err := r.Result(ctx); ch <- out{i, res, err} }(i, r)
	}
	for range reqs {
		o := <-ch
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Text() != alone[o.i] {
			t.Errorf("request %d: %q, alone %q", o.i, o.res.Text(), alone[o.i])
		}
		if o.res.Usage == nil || o.res.Usage.CompletionTokens <= 0 {
			t.Errorf("request %d: usage %+v", o.i, o.res.Usage)
		}
	}
}

// S3 -- cancelling mid-stream frees the request on the server (realm_num_requests_running).
func TestS3CancelWebSocket(t *testing.T) {
	s := srv(t)
	c := newClient(t, testKey)
	ctx := ctxT(t, 60*time.Second)
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v before", n)
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := conn.Chat(ctx, longReq())
	if err != nil {
		t.Fatal(err)
	}
	deltas := 0
	for ev := range r.Events() {
		if ev.Type == "delta" {
			deltas++
		}
		if deltas == 3 {
			break
		}
	}
	if n := s.running(t); n < 1 {
		t.Fatalf("running %v mid-stream", n)
	}
	if err := r.Cancel(); err != nil {
		t.Fatal(err)
	}
	res, err := r.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].FinishReason != "cancelled" {
		t.Fatalf("finish %q", res.Choices[0].FinishReason)
	}
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v after cancel", n)
	}
	// cancelling the request's context cancels it on the server too
	rctx, cancel := context.WithCancel(ctx)
	r2, err := conn.Chat(rctx, longReq())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Next(ctx); err != nil { // created
		t.Fatal(err)
	}
	cancel()
	for {
		ev, err := r2.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "done" && ev.Choices[0].FinishReason != "cancelled" {
			t.Fatalf("finish %q", ev.Choices[0].FinishReason)
		}
	}
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v after ctx cancel", n)
	}
	if d, err := conn.Ping(ctx, "still-open"); err != nil || d != "still-open" {
		t.Fatalf("ping: %q %v", d, err)
	}
}

func TestS3CancelSSE(t *testing.T) {
	s := srv(t)
	c := newClient(t, testKey)
	ctx := ctxT(t, 60*time.Second)
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v before", n)
	}
	// closing the stream
	st, err := c.ChatCompletionStream(ctx, longReq())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4 && st.Next(); i++ {
	}
	if n := s.running(t); n < 1 {
		t.Fatalf("running %v mid-stream", n)
	}
	st.Close()
	if st.Next() || st.Err() != nil {
		t.Fatalf("a closed stream: %v", st.Err())
	}
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v after Close", n)
	}
	// cancelling the context
	sctx, cancel := context.WithCancel(ctx)
	st, err = c.ChatCompletionStream(sctx, longReq())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4 && st.Next(); i++ {
	}
	if n := s.running(t); n < 1 {
		t.Fatalf("running %v mid-stream", n)
	}
	cancel()
	for st.Next() {
	}
	if !errors.Is(st.Err(), context.Canceled) {
		t.Fatalf("err after cancel: %v", st.Err())
	}
	if n := s.waitRunning(t, func(n float64) bool { return n == 0 }); n != 0 {
		t.Fatalf("running %v after cancel", n)
	}
}

// S4 -- a wrong key (or none) is the authentication error type, over HTTP and the handshake.
func TestS4WrongKeyIsAuthError(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	check := func(what string, err error) {
		t.Helper()
		var e *realm.APIError
		if !errors.As(err, &e) || !realm.IsAuth(err) || e.Status != 401 || e.Code != realm.CodeInvalidAPIKey {
			t.Errorf("%s: %v (%T), want 401 invalid_api_key", what, err, err)
		}
	}
	for _, key := range []string{"wrong-key", ""} {
		c := newClient(t, key, realm.WithMaxRetries(2)) // no retry turns it into anything else
		_, err := c.ChatCompletion(ctx, chatReq("hi", 4, 1))
		check("chat "+key, err)
		_, err = c.ChatCompletionStream(ctx, chatReq("hi", 4, 1))
		check("stream "+key, err)
		_, err = c.Completion(ctx, &realm.CompletionRequest{Prompt: "hi"})
		check("completion "+key, err)
		_, err = c.Models(ctx)
		check("models "+key, err)
		_, err = c.Connect(ctx)
		check("connect "+key, err)
	}
}

// S5 -- a tenant over its limit gets the rate-limit error with its retry delay. On a shared server
// another client may have spent the tenant's minute already: the first request may be refused.
func TestS5TenantOverLimitIsRateLimitError(t *testing.T) {
	c := newClient(t, limitedKey)
	ctx := ctxT(t, 60*time.Second)
	var rl *realm.APIError
	for i := 0; i < 3; i++ { // requests_per_minute = 2
		_, err := c.ChatCompletion(ctx, chatReq("hi", 2, 1))
		if err != nil {
			if !realm.IsRateLimit(err) || !errors.As(err, &rl) {
				t.Fatalf("not a rate-limit error: %v", err)
			}
			break
		}
	}
	if rl == nil {
		t.Fatal("the tenant's requests_per_minute never refused")
	}
	if rl.Status != 429 || rl.Code != realm.CodeRateLimitExceeded || rl.RetryAfter <= 0 || rl.RetryAfter > 60*time.Second {
		t.Fatalf("rate limit error %+v", rl)
	}
	// the same over realm.v1: an `error` with retry_after_s, and the connection stays open
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var werr error
	for i := 0; i < 3 && werr == nil; i++ {
		r, err := conn.Chat(ctx, chatReq("hi", 2, 1))
		if err != nil {
			t.Fatal(err)
		}
		_, werr = r.Result(ctx)
	}
	var we *realm.APIError
	if !realm.IsRateLimit(werr) || !errors.As(werr, &we) || we.RetryAfter <= 0 || we.RetryAfter > 60*time.Second {
		t.Fatalf("realm.v1: %v", werr)
	}
	if _, err := conn.Ping(ctx, ""); err != nil || conn.Closed() {
		t.Fatalf("connection after the refusal: %v", err)
	}
}

// S6 -- a server killed mid-stream: a clean connection error, no hang. Always a server of its own
// (never the shared one).
func TestS6ServerKilledMidStream(t *testing.T) {
	if mainSrvErr != nil {
		t.Fatal(mainSrvErr)
	}
	s, err := startServer("realm-go-client-test-kill")
	if err != nil {
		t.Fatal(err)
	}
	defer s.kill()
	goroutines := runtime.NumGoroutine()
	c := realm.NewClient(s.URL, realm.WithAPIKey(testKey), realm.WithMaxRetries(0))
	ctx := ctxT(t, 60*time.Second)
	req := longReq()
	req.MaxTokens = realm.Ptr(4000)
	st, err := c.ChatCompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Next() {
		t.Fatal(st.Err())
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*realm.Request
	for i := 0; i < 2; i++ {
		r, err := conn.Chat(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		for ev := range r.Events() { // to its first delta
			if ev.Type == "delta" {
				break
			}
		}
	}
	s.kill()
	t0 := time.Now()
	for st.Next() {
	}
	var ce *realm.ConnectionError
	if !errors.As(st.Err(), &ce) || !realm.IsConnection(st.Err()) {
		t.Fatalf("SSE after the kill: %v (%T)", st.Err(), st.Err())
	}
	for _, r := range reqs {
		_, err := r.Result(ctx)
		var cc *realm.ConnectionClosedError
		if !errors.As(err, &cc) || cc.Code != 1006 {
			t.Fatalf("realm.v1 request after the kill: %v (%T)", err, err)
		}
	}
	if !conn.Closed() {
		t.Fatal("the connection is not closed")
	}
	var cc *realm.ConnectionClosedError
	if _, err := conn.Chat(ctx, req); !errors.As(err, &cc) {
		t.Fatalf("a new request on the dead connection: %v", err)
	}
	if _, err := conn.Ping(ctx, "x"); !errors.As(err, &cc) {
		t.Fatalf("a ping on the dead connection: %v", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	conn.Close()
	t1 := time.Now()
	if _, err := c.ChatCompletion(ctx, chatReq("hi", 2, 1)); !errors.As(err, &ce) {
		t.Fatalf("a request to the dead address: %v (%T)", err, err)
	}
	if _, err := c.ChatCompletionStream(ctx, chatReq("hi", 2, 1)); !errors.As(err, &ce) {
		t.Fatalf("a stream to the dead address: %v (%T)", err, err)
	}
	if _, err := c.Connect(ctx); !errors.As(err, &ce) {
		t.Fatalf("connect to the dead address: %v (%T)", err, err)
	}
	if d := time.Since(t1); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	time.Sleep(100 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > goroutines+10 {
		t.Fatalf("goroutines: %d, were %d", n, goroutines)
	}
}
