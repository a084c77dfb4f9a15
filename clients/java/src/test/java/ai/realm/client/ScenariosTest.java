package ai.realm.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** clients/SCENARIOS.md, S1..S6, against the real realm-server on the real model. */
@ExtendWith(TestServer.Extension.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ScenariosTest {
    static ChatRequest chatReq(String prompt, int maxTokens, long seed) {
        return new ChatRequest().user(prompt).maxTokens(maxTokens).seed(seed).temperature(0.7);
    }

    static ChatRequest longReq(int maxTokens) {
        return new ChatRequest().user("Name three colours.").maxTokens(maxTokens).ignoreEos(true);
    }

    static Throwable cause(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) t = t.getCause();
        return t;
    }

    // S1 -- a streamed chat answer equals the server's non-streamed answer for the same seed.
    @Test
    void test_S1_streamEqualsWholeAnswer() throws Exception {
        RealmClient c = TestServer.shared().client(TestServer.KEY);
        ChatRequest req = chatReq("Name three colours.", 24, 7);
        ChatCompletion whole = c.chat(req);
        String want = whole.choices.get(0).message.content;
        assertFalse(want.isEmpty(), "empty whole answer");
        String finishWhole = whole.choices.get(0).finish_reason;

        StringBuilder text = new StringBuilder();
        String finish = null;
        Usage usage = null;
        Timings timings = null;
        try (RealmStream<ChatChunk> s = c.chatStream(req)) {
            for (ChatChunk ch : s) {
                if (ch.usage != null) usage = ch.usage;
                if (ch.timings != null) timings = ch.timings;
                for (ChatChunk.Choice choice : ch.choices) {
                    if (choice.delta != null && choice.delta.content != null) text.append(choice.delta.content);
                    if (choice.finish_reason != null) finish = choice.finish_reason;
                    if (choice.timings != null) timings = choice.timings;
                }
            }
        }
        assertEquals(want, text.toString());
        assertEquals(finishWhole, finish);
        assertNotNull(usage);
        assertEquals(whole.usage.completion_tokens, usage.completion_tokens);
        assertNotNull(timings);
        assertEquals(whole.timings.get(0).predicted_n, timings.predicted_n);

        // the async variant gives the same
        assertEquals(want, c.chatAsync(req).get(60, TimeUnit.SECONDS).text());

        // and over realm.v1: the deltas' texts, read as events
        try (RealmConnection conn = c.connect()) {
            RealmRequest r = conn.chat(req);
            StringBuilder ws = new StringBuilder();
            Event done = null;
            for (Event e : r.events()) {
                if (e.isDelta()) ws.append(e.text);
                if (e.isDone()) done = e;
            }
            assertNotNull(done);
            assertEquals(want, ws.toString());
            assertEquals(finishWhole, done.choices.get(0).finish_reason);
            assertEquals(whole.usage.completion_tokens, done.usage.completion_tokens);
            assertEquals(whole.timings.get(0).predicted_n, done.choices.get(0).timings.predicted_n);
            Result res = r.await();
            assertEquals(want, res.text());
            assertEquals(finishWhole, res.finishReason());
        }
    }

    // S2 -- three requests at once on one connection, each answered in full and as if alone.
    @Test
    void test_S2_threeConcurrentRequestsOnOneConnection() throws Exception {
        RealmClient c = TestServer.shared().client(TestServer.KEY);
        String[] prompts = {"Name three colours.", "Count to five.", "Say hi."};
        List<String> alone = new ArrayList<>();
        for (String p : prompts) alone.add(c.chat(chatReq(p, 16, 3)).text());
        try (RealmConnection conn = c.connect()) {
            assertEquals("realm.v1", conn.hello().protocol);
            List<RealmRequest> reqs = new ArrayList<>();
            for (String p : prompts) reqs.add(conn.chat(chatReq(p, 16, 3)));
            assertEquals(3, new HashSet<>(reqs.stream().map(RealmRequest::id).toList()).size());
            assertEquals(3, conn.inFlight());
            // all three read at once, each by a publisher subscriber of its own
            List<CompletableFuture<String>> texts = new ArrayList<>();
            for (RealmRequest r : reqs) texts.add(collect(r.events()));
            for (int i = 0; i < 3; i++) {
                assertEquals(alone.get(i), texts.get(i).get(60, TimeUnit.SECONDS), "request " + i);
                Result res = reqs.get(i).result().get(60, TimeUnit.SECONDS);
                assertEquals(alone.get(i), res.text());
                assertTrue(res.usage().completion_tokens > 0);
            }
            assertEquals(0, conn.inFlight());
        }
    }

    /** Subscribes to a publisher of events, asking one at a time; completes with the deltas' text. */
    static CompletableFuture<String> collect(Flow.Publisher<Event> p) {
        CompletableFuture<String> f = new CompletableFuture<>();
        p.subscribe(new Flow.Subscriber<Event>() {
            final StringBuilder b = new StringBuilder();
            Flow.Subscription s;

            public void onSubscribe(Flow.Subscription s) { this.s = s; s.request(1); }
            public void onNext(Event e) { if (e.isDelta()) b.append(e.text); s.request(1); }
            public void onError(Throwable t) { f.completeExceptionally(t); }
            public void onComplete() { f.complete(b.toString()); }
        });
        return f;
    }

    // S3 -- cancelling mid-stream frees the request on the server (realm_num_requests_running).
    @Test
    void test_S3_cancelWebSocket() throws Exception {
        TestServer s = TestServer.shared();
        RealmClient c = s.client(TestServer.KEY);
        assertEquals(0, s.waitRunning(n -> n == 0), "running before");
        try (RealmConnection conn = c.connect()) {
            RealmRequest r = conn.chat(longReq(2000));
            int deltas = 0;
            while (deltas < 3) {
                Event e = r.next(Duration.ofSeconds(30));
                if (e.isDelta()) deltas++;
            }
            assertTrue(s.running() >= 1, "running mid-stream");
            r.cancel();
            Result res = r.result().get(30, TimeUnit.SECONDS);
            assertEquals("cancelled", res.finishReason());
            assertEquals(0, s.waitRunning(n -> n == 0), "running after cancel");

            // closing the request's event stream early cancels it too
            RealmRequest r2 = conn.chat(longReq(2000));
            try (RealmStream<Event> ev = r2.events()) {
                int n = 0;
                for (Event e : ev) if (e.isDelta() && ++n == 3) break;
            }
            assertEquals("cancelled", r2.result().get(30, TimeUnit.SECONDS).finishReason());
            assertEquals(0, s.waitRunning(n -> n == 0), "running after closing the events");

            // cancelling a publisher's subscription too
            RealmRequest r3 = conn.chat(longReq(2000));
            CompletableFuture<Void> got3 = new CompletableFuture<>();
            r3.events().subscribe(new Flow.Subscriber<Event>() {
                Flow.Subscription sub;
                int n;
                public void onSubscribe(Flow.Subscription sub) { this.sub = sub; sub.request(1); }
                public void onNext(Event e) { if (e.isDelta() && ++n == 3) { sub.cancel(); got3.complete(null); } else sub.request(1); }
                public void onError(Throwable t) { got3.completeExceptionally(t); }
                public void onComplete() { got3.completeExceptionally(new AssertionError("completed")); }
            });
            got3.get(30, TimeUnit.SECONDS);
            assertEquals("cancelled", r3.result().get(30, TimeUnit.SECONDS).finishReason());
            assertEquals(0, s.waitRunning(n -> n == 0), "running after cancelling the subscription");

            assertEquals("still-open", conn.ping("still-open").get(10, TimeUnit.SECONDS));
            assertFalse(conn.isClosed());
        }
    }

    @Test
    void test_S3_cancelSSE() throws Exception {
        TestServer s = TestServer.shared();
        RealmClient c = s.client(TestServer.KEY);
        assertEquals(0, s.waitRunning(n -> n == 0), "running before");
        // leaving the try-with-resources block (closing the stream)
        try (RealmStream<ChatChunk> st = c.chatStream(longReq(2000))) {
            for (int i = 0; i < 4; i++) assertNotNull(st.next());
            assertTrue(s.running() >= 1, "running mid-stream");
        }
        assertEquals(0, s.waitRunning(n -> n == 0), "running after close");

        // cancelling the publisher's subscription
        RealmStream<ChatChunk> st = c.chatStream(longReq(2000));
        CompletableFuture<Void> got = new CompletableFuture<>();
        st.subscribe(new Flow.Subscriber<ChatChunk>() {
            Flow.Subscription sub;
            int n;
            public void onSubscribe(Flow.Subscription sub) { this.sub = sub; sub.request(1); }
            public void onNext(ChatChunk ch) { if (++n == 4) got.complete(null); else sub.request(1); }
            public void onError(Throwable t) { got.completeExceptionally(t); }
            public void onComplete() { got.completeExceptionally(new AssertionError("completed")); }
        });
        got.get(30, TimeUnit.SECONDS);
        assertTrue(s.running() >= 1, "running mid-stream");
        // cancel from another thread than the delivering one
        st.close();
        assertFalse(st.hasNext());
        assertEquals(0, s.waitRunning(n -> n == 0), "running after cancelling the subscription");
    }

    // S4 -- a wrong key (or none) is the authentication error type, over HTTP and the handshake.
    @Test
    void test_S4_wrongKeyIsAuthError() {
        TestServer s = TestServer.shared();
        for (String key : new String[] {"wrong-key", null}) {
            RealmClient c = RealmClient.builder().baseUrl(s.url).apiKey(key).maxRetries(2).build(); // no retry turns it into anything else
            List<Runnable> calls = List.of(
                    () -> c.chat(chatReq("hi", 4, 1)),
                    () -> c.chatAsync(chatReq("hi", 4, 1)).join(),
                    () -> c.chatStream(chatReq("hi", 4, 1)),
                    () -> c.complete(new CompletionRequest("hi").maxTokens(2)),
                    () -> c.models(),
                    () -> c.connect());
            int i = 0;
            for (Runnable call : calls) {
                String what = "call " + i++ + " with key " + key;
                Throwable t = cause(assertThrows(RuntimeException.class, call::run, what));
                if (!(t instanceof AuthenticationException)) fail(what + ": " + t, t);
                AuthenticationException e = (AuthenticationException) t;
                assertEquals(401, e.status(), what);
                assertEquals("invalid_api_key", e.code(), what);
            }
        }
    }

    // S5 -- a tenant over its limit gets the rate-limit error with its retry delay. On a shared
    // server another client may have spent the tenant's minute already: the first request may be refused.
    @Test
    void test_S5_tenantOverLimitIsRateLimitError() throws Exception {
        RealmClient c = TestServer.shared().client(TestServer.LIMITED_KEY);
        RateLimitException rl = null;
        for (int i = 0; i < 3 && rl == null; i++) { // requests_per_minute = 2
            try {
                c.chat(chatReq("hi", 2, 1));
            } catch (RateLimitException e) {
                rl = e;
            }
        }
        assertNotNull(rl, "the tenant's requests_per_minute never refused");
        assertEquals(429, rl.status());
        assertEquals("rate_limit_exceeded", rl.code());
        assertNotNull(rl.retryAfter());
        assertTrue(rl.retryAfter().toMillis() > 0 && rl.retryAfter().compareTo(Duration.ofSeconds(60)) <= 0, "retry after " + rl.retryAfter());

        try (RealmConnection conn = c.connect()) {
            Throwable werr = null;
            for (int i = 0; i < 3 && werr == null; i++) {
                try {
                    conn.chat(chatReq("hi", 2, 1)).result().get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    werr = e.getCause();
                }
            }
            if (!(werr instanceof RateLimitException)) fail("realm.v1: " + werr, werr);
            RateLimitException we = (RateLimitException) werr;
            assertEquals(429, we.status());
            assertEquals("rate_limit_exceeded", we.code());
            assertTrue(we.retryAfter() != null && we.retryAfter().toMillis() > 0 && we.retryAfter().compareTo(Duration.ofSeconds(60)) <= 0);
            // the same error read from the request's events
            RealmRequest r = conn.chat(chatReq("hi", 2, 1));
            assertThrows(RateLimitException.class, () -> { while (r.next(Duration.ofSeconds(30)) != null) { } });
            assertEquals("x", conn.ping("x").get(10, TimeUnit.SECONDS));
            assertFalse(conn.isClosed());
        }
    }

    // S6 -- a server killed mid-stream: a clean connection error, no hang. Always a server of its
    // own (never the shared one).
    @Test
    void test_S6_serverKilledMidStream() throws Exception {
        try (TestServer s = TestServer.start("realm-java-client-test-kill")) {
            RealmClient c = s.client(TestServer.KEY);
            RealmStream<ChatChunk> st = c.chatStream(longReq(4000));
            assertTrue(st.hasNext());
            st.next();
            RealmConnection conn = c.connect();
            List<RealmRequest> reqs = List.of(conn.chat(longReq(4000)), conn.chat(longReq(4000)));
            for (RealmRequest r : reqs) {
                Event e;
                do { e = r.next(Duration.ofSeconds(30)); } while (!e.isDelta());
            }
            s.kill(); // SIGKILL by PID (destroyForcibly)
            long t0 = System.nanoTime();
            ConnectionException sse = assertThrows(ConnectionException.class, () -> { while (st.hasNext()) st.next(); });
            assertFalse(sse instanceof ConnectionClosedException, "SSE: " + sse);
            for (RealmRequest r : reqs) {
                ExecutionException ee = assertThrows(ExecutionException.class, () -> r.result().get(10, TimeUnit.SECONDS));
                if (!(ee.getCause() instanceof ConnectionClosedException)) fail("realm.v1 request after the kill: " + ee.getCause(), ee.getCause());
                assertEquals(1006, ((ConnectionClosedException) ee.getCause()).closeCode());
                // reading its events raises the same
                ConnectionClosedException ce = assertThrows(ConnectionClosedException.class, () -> { while (r.next(Duration.ofSeconds(10)) != null) { } });
                assertEquals(1006, ce.closeCode());
            }
            assertTrue(conn.isClosed());
            assertEquals(1006, assertThrows(ConnectionClosedException.class, () -> conn.chat(longReq(4))).closeCode());
            ExecutionException pe = assertThrows(ExecutionException.class, () -> conn.ping("x").get(1, TimeUnit.SECONDS));
            assertTrue(pe.getCause() instanceof ConnectionClosedException, "ping: " + pe.getCause());
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(10), "took too long");
            conn.close();

            long t1 = System.nanoTime();
            assertThrows(ConnectionException.class, () -> c.chat(chatReq("hi", 2, 1)));
            assertThrows(ConnectionException.class, () -> c.chatStream(chatReq("hi", 2, 1)));
            assertThrows(ConnectionException.class, c::connect);
            assertThrows(ConnectionException.class, c::health);
            assertTrue(System.nanoTime() - t1 < TimeUnit.SECONDS.toNanos(5), "dead address took too long");
        }
    }
}
