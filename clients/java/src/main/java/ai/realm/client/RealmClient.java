package ai.realm.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonSyntaxException;
import com.google.gson.reflect.TypeToken;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * A client of realm-server: its OpenAI-compatible HTTP API (whole answers, and streams over
 * server-sent events) and its realm.v1 WebSocket protocol ({@link #connect()}). Thread-safe; make
 * one and share it.
 *
 * <pre>{@code
 * RealmClient client = RealmClient.builder().baseUrl("http://127.0.0.1:8080").apiKey(key).build();
 * ChatCompletion answer = client.chat(new ChatRequest().user("Hi").maxTokens(16));
 * }</pre>
 *
 * <p>Errors are unchecked {@link RealmException}s (see its subclasses). Requests the server
 * refused before doing anything ({@code 429}/{@code 503} with a {@code Retry-After} of at most
 * {@link Builder#maxRetryWait}) are retried up to {@link Builder#maxRetries} times; nothing else
 * is, so no request runs twice.
 */
public final class RealmClient {
    private final URI base;
    private final String apiKey;
    private final Duration timeout;
    private final Duration connectTimeout;
    private final int maxRetries;
    private final Duration maxRetryWait;
    private final HttpClient http;

    private RealmClient(Builder b) {
        String u = b.baseUrl.replaceAll("/+$", "");
        if (u.endsWith("/v1")) u = u.substring(0, u.length() - 3);
        this.base = URI.create(u);
        this.apiKey = b.apiKey == null || b.apiKey.isEmpty() ? null : b.apiKey;
        this.timeout = b.timeout;
        this.connectTimeout = b.connectTimeout;
        this.maxRetries = b.maxRetries;
        this.maxRetryWait = b.maxRetryWait;
        this.http = b.httpClient != null ? b.httpClient
                : HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(b.connectTimeout).build();
    }

    public static Builder builder() { return new Builder(); }

    /** Options of a {@link RealmClient}. */
    public static final class Builder {
        private String baseUrl = "http://127.0.0.1:8080";
        private String apiKey;
        private Duration timeout = Duration.ofMinutes(10);
        private Duration connectTimeout = Duration.ofSeconds(10);
        private int maxRetries = 2;
        private Duration maxRetryWait = Duration.ofSeconds(10);
        private HttpClient httpClient;

        /** {@code http://host:port} (a trailing {@code /v1} is allowed). Default {@code http://127.0.0.1:8080}. */
        public Builder baseUrl(String url) { this.baseUrl = Objects.requireNonNull(url); return this; }

        /** The API key, sent as {@code Authorization: Bearer KEY}; null or "" for none. */
        public Builder apiKey(String key) { this.apiKey = key; return this; }

        /** The time a whole answer (or a stream's response headers) may take. Default 10 min. */
        public Builder timeout(Duration d) { this.timeout = Objects.requireNonNull(d); return this; }

        /** The TCP connect timeout, and the wait for realm.v1's hello. Default 10 s. */
        public Builder connectTimeout(Duration d) { this.connectTimeout = Objects.requireNonNull(d); return this; }

        /** Retries of requests refused with 429/503 and a short Retry-After. Default 2; 0 for none. */
        public Builder maxRetries(int n) { this.maxRetries = Math.max(0, n); return this; }

        /** The longest Retry-After that is waited out rather than raised. Default 10 s. */
        public Builder maxRetryWait(Duration d) { this.maxRetryWait = Objects.requireNonNull(d); return this; }

        /** Your own {@link HttpClient} (requests still ask for HTTP/1.1). */
        public Builder httpClient(HttpClient c) { this.httpClient = c; return this; }

        public RealmClient build() { return new RealmClient(this); }
    }

    URI base() { return base; }
    String apiKey() { return apiKey; }
    Duration timeout() { return timeout; }
    Duration connectTimeout() { return connectTimeout; }
    HttpClient http() { return http; }

    // ---- whole answers ----

    /** {@code POST /v1/chat/completions}, the whole answer. */
    public ChatCompletion chat(ChatRequest req) { return join(chatAsync(req)); }

    public CompletableFuture<ChatCompletion> chatAsync(ChatRequest req) {
        return postAsync("/v1/chat/completions", req.body(false), ChatCompletion.class);
    }

    /** {@code POST /v1/completions}, the whole answer. */
    public Completion complete(CompletionRequest req) { return join(completeAsync(req)); }

    public CompletableFuture<Completion> completeAsync(CompletionRequest req) {
        return postAsync("/v1/completions", req.body(false), Completion.class);
    }

    /** {@code GET /v1/models}. */
    public List<Model> models() { return join(modelsAsync()); }

    public CompletableFuture<List<Model>> modelsAsync() {
        return sendAsync(request("/v1/models").GET().build(), 0).thenApply(r -> {
            JsonObject o = parse(r, JsonObject.class);
            return Json.GSON.fromJson(o.get("data"), new TypeToken<List<Model>>() {}.getType());
        });
    }

    /**
     * {@code GET /health}: {@code "ok"}, or {@code "loading"} / {@code "draining"} (the server's
     * 503). Raises a {@link ConnectionException} when the server cannot be reached.
     */
    public String health() {
        HttpRequest r = request("/health").GET().build();
        HttpResponse<String> resp = join(http.sendAsync(r, HttpResponse.BodyHandlers.ofString()).exceptionally(e -> {
            throw connectionError(e);
        }));
        try {
            String s = Json.str(Json.parseObject(resp.body()), "status");
            if (s != null) return s;
        } catch (RuntimeException ignored) {
            // fall through
        }
        throw RealmException.of(resp.statusCode(), null, "unexpected /health answer: " + resp.body(), null, null, null);
    }

    // ---- streams (server-sent events) ----

    /**
     * {@code POST /v1/chat/completions} streamed: the chunks as a {@link RealmStream}. Usage is
     * asked for ({@code include_usage}) unless the request sets {@code stream_options}. Closing
     * the stream closes the response, and the server cancels the request. Errors before the
     * first chunk (a refusal) are thrown from here.
     */
    public RealmStream<ChatChunk> chatStream(ChatRequest req) {
        return stream("/v1/chat/completions", req.body(true), ChatChunk.class);
    }

    /** {@code POST /v1/completions} streamed. */
    public RealmStream<Completion> completeStream(CompletionRequest req) {
        return stream("/v1/completions", req.body(true), Completion.class);
    }

    // ---- realm.v1 ----

    /** Opens a realm.v1 WebSocket connection and waits for the server's {@code hello}. */
    public RealmConnection connect() { return join(connectAsync()); }

    public CompletableFuture<RealmConnection> connectAsync() { return RealmConnection.open(this); }

    // ---- internals ----

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(timeout).version(HttpClient.Version.HTTP_1_1);
        if (apiKey != null) b.header("Authorization", "Bearer " + apiKey);
        return b;
    }

    private <T> CompletableFuture<T> postAsync(String path, Map<String, Object> body, Class<T> type) {
        HttpRequest r = request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.GSON.toJson(body))).build();
        return sendAsync(r, 0).thenApply(resp -> parse(resp, type));
    }

    private static <T> T parse(HttpResponse<String> resp, Class<T> type) {
        try {
            T t = Json.GSON.fromJson(resp.body(), type);
            if (t == null) throw new JsonSyntaxException("empty body");
            return t;
        } catch (JsonSyntaxException e) {
            throw new ConnectionException("protocol_error", "unreadable answer from the server: " + e.getMessage(), e);
        }
    }

    private CompletableFuture<HttpResponse<String>> sendAsync(HttpRequest r, int attempt) {
        return http.sendAsync(r, HttpResponse.BodyHandlers.ofString()).handle((resp, err) -> {
            if (err != null) throw connectionError(err);
            return resp;
        }).thenCompose(resp -> {
            if (resp.statusCode() / 100 == 2) return CompletableFuture.completedFuture(resp);
            RealmException e = httpError(resp.statusCode(), resp.headers(), resp.body());
            Duration wait = retryWait(e, attempt);
            if (wait == null) return CompletableFuture.failedFuture(e);
            return CompletableFuture.supplyAsync(() -> null,
                    CompletableFuture.delayedExecutor(wait.toMillis(), TimeUnit.MILLISECONDS)).thenCompose(x -> sendAsync(r, attempt + 1));
        });
    }

    /** How long to wait before retrying a refusal, or null not to. */
    private Duration retryWait(RealmException e, int attempt) {
        if (attempt >= maxRetries) return null;
        if (!(e instanceof RateLimitException || e instanceof OverloadedException)) return null;
        Duration d = e.retryAfter() != null ? e.retryAfter() : Duration.ofMillis(500L << attempt);
        return d.compareTo(maxRetryWait) <= 0 ? d : null;
    }

    private <T> RealmStream<T> stream(String path, Map<String, Object> body, Class<T> type) {
        HttpRequest r = request(path).header("Content-Type", "application/json").header("Accept", "text/event-stream")
                .POST(HttpRequest.BodyPublishers.ofString(Json.GSON.toJson(body))).build();
        for (int attempt = 0; ; attempt++) {
            HttpResponse<InputStream> resp;
            try {
                resp = http.send(r, HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                throw connectionError(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ConnectionException("interrupted", e);
            }
            if (resp.statusCode() == 200) return new RealmStream<>(new SseSource<>(resp.body(), type));
            String text;
            try (InputStream in = resp.body()) {
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                text = "";
            }
            RealmException e = httpError(resp.statusCode(), resp.headers(), text);
            Duration wait = retryWait(e, attempt);
            if (wait == null) throw e;
            try {
                Thread.sleep(wait.toMillis());
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw e;
            }
        }
    }

    /** Server-sent events: {@code data: {...}} events until {@code data: [DONE]}. */
    private static final class SseSource<T> implements RealmStream.Source<T> {
        private final InputStream in;
        private final BufferedReader reader;
        private final Class<T> type;
        private volatile boolean finished;

        SseSource(InputStream in, Class<T> type) {
            this.in = in;
            this.reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            this.type = type;
        }

        @Override
        public T fetch() throws IOException {
            StringBuilder data = new StringBuilder();
            while (true) {
                String line = reader.readLine();
                if (line == null) {
                    throw new ConnectionException("the stream ended before [DONE] (the server went away)", null);
                }
                if (line.isEmpty()) {
                    if (data.length() == 0) continue;
                    String d = data.toString();
                    data.setLength(0);
                    if (d.equals("[DONE]")) {
                        finished = true;
                        return null;
                    }
                    JsonObject o;
                    try {
                        o = Json.parseObject(d);
                    } catch (RuntimeException e) {
                        throw new ConnectionException("protocol_error", "unreadable event from the server: " + e.getMessage(), e);
                    }
                    JsonElement err = o.get("error");
                    if (err != null && err.isJsonObject()) {
                        finished = true;
                        throw errorFromBody(0, err.getAsJsonObject(), null, null);
                    }
                    return Json.GSON.fromJson(o, type);
                }
                if (line.startsWith(":")) continue;
                if (line.startsWith("data:")) {
                    String v = line.substring(5);
                    if (v.startsWith(" ")) v = v.substring(1);
                    if (data.length() > 0) data.append('\n');
                    data.append(v);
                }
                // other fields (event:, id:, retry:) are not used by realm-server
            }
        }

        @Override
        public void close() {
            try {
                in.close();
            } catch (IOException ignored) {
                // closing is best effort
            }
        }

        @Override
        public boolean finished() { return finished; }
    }

    static RealmException httpError(int status, HttpHeaders headers, String body) {
        Duration retry = headers.firstValue("Retry-After").map(RealmClient::parseRetryAfter).orElse(null);
        String requestId = headers.firstValue("X-Request-Id").orElse(null);
        JsonObject err = null;
        try {
            JsonElement e = Json.parseObject(body).get("error");
            if (e != null && e.isJsonObject()) err = e.getAsJsonObject();
        } catch (RuntimeException ignored) {
            // not OpenAI's error body
        }
        if (err == null) {
            return RealmException.of(status, null, "HTTP " + status + (body == null || body.isEmpty() ? "" : ": " + body), null, retry, requestId);
        }
        return errorFromBody(status, err, retry, requestId);
    }

    static RealmException errorFromBody(int status, JsonObject err, Duration retry, String requestId) {
        String code = Json.str(err, "code");
        if (status == 0) status = RealmException.statusOf(code);
        if (retry == null) {
            Long s = Json.num(err, "retry_after_s");
            if (s != null) retry = Duration.ofSeconds(s);
        }
        return RealmException.of(status, code, Json.str(err, "message"), Json.str(err, "param"), retry, requestId);
    }

    static Duration parseRetryAfter(String v) {
        try {
            return Duration.ofSeconds(Long.parseLong(v.trim()));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    static RealmException connectionError(Throwable e) {
        while ((e instanceof CompletionException || e instanceof ExecutionException) && e.getCause() != null) e = e.getCause();
        if (e instanceof RealmException) return (RealmException) e;
        if (e instanceof HttpConnectTimeoutException) return new ConnectionException("timeout", "connect timed out: " + e.getMessage(), e);
        if (e instanceof HttpTimeoutException) return new ConnectionException("timeout", "timed out: " + e.getMessage(), e);
        if (e instanceof ConnectException) return new ConnectionException("cannot connect: " + e, e);
        return new ConnectionException("connection error: " + e, e);
    }

    /** Waits for a future, unwrapping its exception. */
    static <T> T join(CompletableFuture<T> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RealmException) throw (RealmException) c;
            throw connectionError(c);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            f.cancel(true);
            throw new ConnectionException("interrupted", e);
        }
    }
}
