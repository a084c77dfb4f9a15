package ai.realm.client;

import com.google.gson.JsonObject;
import java.net.URI;
import java.net.http.HttpHeaders;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A realm.v1 WebSocket connection (native-server/PROTOCOL.md): many requests at once, each a
 * {@link RealmRequest} routed by its id, cancellable without closing the connection.
 *
 * <p>When the connection closes (the server went away, a close frame, {@link #close()}) every
 * request still in flight fails with a {@link ConnectionClosedException} carrying the close code
 * (1006 when it was lost without a close frame), and so does every later request on it: nothing
 * waits forever. Thread-safe.
 */
public final class RealmConnection implements AutoCloseable {
    private final Map<String, RealmRequest> inflight = new ConcurrentHashMap<>();
    private final ConcurrentLinkedQueue<CompletableFuture<String>> pings = new ConcurrentLinkedQueue<>();
    private final CompletableFuture<Hello> hello = new CompletableFuture<>();
    private final CompletableFuture<ConnectionClosedException> closedFuture = new CompletableFuture<>();
    private final AtomicLong ids = new AtomicLong();
    private final Object sendLock = new Object();
    private CompletableFuture<?> sendChain = CompletableFuture.completedFuture(null);
    private volatile ConnectionClosedException closed;
    private volatile WebSocket ws;

    private RealmConnection() {}

    static CompletableFuture<RealmConnection> open(RealmClient client) {
        String b = client.base().toString();
        URI uri = URI.create((b.startsWith("https:") ? "wss:" + b.substring(6) : "ws:" + b.substring(b.indexOf(':') + 1)) + "/v1/ws");
        RealmConnection c = new RealmConnection();
        WebSocket.Builder wb = client.http().newWebSocketBuilder().subprotocols("realm.v1").connectTimeout(client.connectTimeout());
        if (client.apiKey() != null) wb.header("Authorization", "Bearer " + client.apiKey());
        return wb.buildAsync(uri, c.new Listener()).handle((ws, err) -> {
            if (err != null) throw handshakeError(err);
            c.ws = ws;
            return c;
        }).thenCompose(conn -> conn.hello.orTimeout(client.connectTimeout().toMillis(), TimeUnit.MILLISECONDS).handle((h, err) -> {
            if (err == null) return conn;
            Throwable cause = err instanceof java.util.concurrent.CompletionException && err.getCause() != null ? err.getCause() : err;
            RealmException e = cause instanceof java.util.concurrent.TimeoutException
                    ? new ConnectionException("timeout", "no hello from the server within " + client.connectTimeout(), err)
                    : RealmClient.connectionError(err);
            conn.abort(e instanceof ConnectionClosedException ? (ConnectionClosedException) e : new ConnectionClosedException(1002, e.getMessage(), e));
            throw e;
        }));
    }

    private static RealmException handshakeError(Throwable err) {
        Throwable e = err;
        while (e.getCause() != null && !(e instanceof WebSocketHandshakeException)) e = e.getCause();
        if (e instanceof WebSocketHandshakeException) {
            HttpResponse<?> r = ((WebSocketHandshakeException) e).getResponse();
            Object body = r.body();
            String text = body instanceof String ? (String) body : body instanceof byte[] ? new String((byte[]) body) : "";
            HttpHeaders h = r.headers();
            if (r.statusCode() == 101) {
                return new ConnectionException("protocol_error", "refused the server's handshake: " + e.getMessage(), e);
            }
            return RealmClient.httpError(r.statusCode(), h, text);
        }
        return RealmClient.connectionError(err);
    }

    /** The server's {@code hello} (the connection waits for it before {@link RealmClient#connect()} returns). */
    public Hello hello() { return hello.getNow(null); }

    /** Starts a chat completion; its events stream (realm.v1 always streams, with usage). */
    public RealmRequest chat(ChatRequest req) { return start("chat", req.wsBody()); }

    /** Starts a text completion. */
    public RealmRequest complete(CompletionRequest req) { return start("complete", req.wsBody()); }

    private RealmRequest start(String type, Map<String, Object> body) {
        ConnectionClosedException c = closed;
        if (c != null) throw c;
        String id = "r" + ids.incrementAndGet();
        RealmRequest r = new RealmRequest(id, this);
        inflight.put(id, r);
        if ((c = closed) != null) {
            inflight.remove(id);
            throw c;
        }
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("type", type);
        msg.put("id", id);
        msg.put("request", body);
        send(Json.GSON.toJson(msg)).whenComplete((x, err) -> {
            if (err != null) r.fail(closed != null ? closed : new ConnectionClosedException(1006, "send failed: " + err, err));
        });
        return r;
    }

    /** Cancels a request by id (ignored by the server when it has ended). */
    public void cancel(String id) {
        if (closed != null) return;
        send("{\"type\":\"cancel\",\"id\":" + Json.GSON.toJson(id) + "}");
    }

    /** An application-level {@code ping}: completes with the {@code pong}'s data. */
    public CompletableFuture<String> ping(String data) {
        CompletableFuture<String> f = new CompletableFuture<>();
        ConnectionClosedException c = closed;
        if (c != null) return CompletableFuture.failedFuture(c);
        pings.add(f);
        if ((c = closed) != null) {
            f.completeExceptionally(c);
            return f;
        }
        Map<String, Object> msg = new LinkedHashMap<>();
        msg.put("type", "ping");
        if (data != null) msg.put("data", data);
        send(Json.GSON.toJson(msg));
        return f;
    }

    /** Requests in flight (sent, not yet ended). */
    public int inFlight() { return inflight.size(); }

    public boolean isClosed() { return closed != null; }

    /** Completes with the reason when the connection has closed. */
    public CompletableFuture<ConnectionClosedException> closedFuture() { return closedFuture; }

    /**
     * Closes the connection (code 1000): the server cancels its requests, and requests still in
     * flight here fail with {@link ConnectionClosedException} 1000.
     */
    @Override
    public void close() {
        WebSocket w = ws;
        if (closed == null && w != null) {
            failAll(new ConnectionClosedException(1000, "closed by the client", null));
            w.sendClose(WebSocket.NORMAL_CLOSURE, "").whenComplete((x, e) -> {
                if (e != null) w.abort();
            });
            CompletableFuture.delayedExecutor(2, TimeUnit.SECONDS).execute(() -> {
                if (!w.isInputClosed()) w.abort();
            });
        }
    }

    private CompletableFuture<?> send(String text) {
        synchronized (sendLock) {
            WebSocket w = ws;
            CompletableFuture<?> next = sendChain.handle((x, e) -> null).thenCompose(x -> w.sendText(text, true));
            sendChain = next;
            return next;
        }
    }

    private void abort(ConnectionClosedException e) {
        failAll(e);
        WebSocket w = ws;
        if (w != null) w.abort();
    }

    private void failAll(ConnectionClosedException e) {
        synchronized (this) {
            if (closed != null) return;
            closed = e;
        }
        for (RealmRequest r : inflight.values()) r.fail(e);
        inflight.clear();
        CompletableFuture<String> p;
        while ((p = pings.poll()) != null) p.completeExceptionally(e);
        hello.completeExceptionally(e);
        closedFuture.complete(e);
    }

    private void handle(String text) {
        JsonObject o;
        Event e;
        try {
            o = Json.parseObject(text);
            e = Json.GSON.fromJson(o, Event.class);
        } catch (RuntimeException ex) {
            abort(new ConnectionClosedException(1002, "unreadable message from the server: " + ex.getMessage(), ex));
            return;
        }
        String type = e.type == null ? "" : e.type;
        switch (type) {
            case "hello": {
                Hello h = Json.GSON.fromJson(o, Hello.class);
                if (!"realm.v1".equals(h.protocol)) {
                    abort(new ConnectionClosedException(1002, "the server speaks " + h.protocol + ", not realm.v1", null));
                } else {
                    hello.complete(h);
                }
                return;
            }
            case "pong": {
                CompletableFuture<String> p = pings.poll();
                if (p != null) p.complete(Json.str(o, "data"));
                return;
            }
            case "created": case "delta": case "done": case "error": {
                if (e.id == null) return; // an error about a message of ours that could not be read
                RealmRequest r = "done".equals(type) || "error".equals(type) ? inflight.remove(e.id) : inflight.get(e.id);
                if (r != null) r.accept(e);
                return;
            }
            default:
                // unknown types: a later protocol version; ignored
        }
    }

    private final class Listener implements WebSocket.Listener {
        private final StringBuilder partial = new StringBuilder();

        @Override
        public void onOpen(WebSocket webSocket) {
            ws = webSocket;
            webSocket.request(1);
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                String s = partial.toString();
                partial.setLength(0);
                handle(s);
            }
            webSocket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onBinary(WebSocket webSocket, ByteBuffer data, boolean last) {
            abort(new ConnectionClosedException(1003, "a binary frame from the server", null));
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            failAll(new ConnectionClosedException(statusCode, reason, null));
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            failAll(new ConnectionClosedException(1006, "connection lost: " + error, error));
        }
    }
}
