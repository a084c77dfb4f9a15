package ai.realm.client;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One request in flight on a {@link RealmConnection}. Its events ({@code created}, {@code delta}s,
 * {@code done}) queue here as they arrive, so a slow reader of one request never holds up the
 * others. Read them with {@link #next()}, {@link #events()} (a {@link RealmStream}: iterator and
 * {@link Flow.Publisher}) or wait for the whole answer with {@link #result()}. An {@code error}
 * message, or the connection closing, ends it with a {@link RealmException}.
 */
public final class RealmRequest {
    private static final Object END = new Object();

    private final String id;
    private final RealmConnection conn;
    private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
    private final CompletableFuture<Result> result = new CompletableFuture<>();
    private final TreeMap<Integer, StringBuilder> texts = new TreeMap<>();
    private String model;
    private int promptTokens;
    private Object terminal; // END or the RealmException, once read by next()

    RealmRequest(String id, RealmConnection conn) {
        this.id = id;
        this.conn = conn;
    }

    /** The id this client gave the request on its connection. */
    public String id() { return id; }

    /** Called on the connection's reader thread. */
    void accept(Event e) {
        switch (e.type) {
            case "created":
                model = e.model;
                promptTokens = e.prompt_tokens;
                queue.add(e);
                break;
            case "delta":
                texts.computeIfAbsent(e.index, i -> new StringBuilder()).append(e.text == null ? "" : e.text);
                queue.add(e);
                break;
            case "done": {
                int n = Math.max(e.choices == null ? 0 : e.choices.size(), texts.isEmpty() ? 0 : texts.lastKey() + 1);
                List<String> all = new ArrayList<>();
                for (int i = 0; i < n; i++) all.add(texts.containsKey(i) ? texts.get(i).toString() : "");
                queue.add(e);
                queue.add(END);
                result.complete(new Result(id, model, promptTokens, all, e.choices, e.usage));
                break;
            }
            case "error": {
                Duration retry = e.retry_after_s == null ? null : Duration.ofSeconds(e.retry_after_s);
                fail(RealmException.of(RealmException.statusOf(e.code), e.code, e.message, e.param, retry, null));
                break;
            }
            default:
                // unknown message types about a request are ignored (a later protocol version)
        }
    }

    void fail(RealmException ex) {
        if (result.completeExceptionally(ex)) queue.add(ex);
    }

    /** Whether the request has ended ({@code done}, {@code error}, or its connection closed). */
    public boolean isDone() { return result.isDone(); }

    /**
     * The next event, blocking; null after {@code done}. Throws the request's
     * {@link RealmException} (a {@link ConnectionClosedException} when its connection closed).
     */
    public Event next() throws InterruptedException {
        return take(queue.take());
    }

    /**
     * The next event, waiting at most {@code timeout}; null after {@code done}. Throws a
     * {@link ConnectionException} with code {@code timeout} when none came in time.
     */
    public Event next(Duration timeout) throws InterruptedException {
        Object o = terminal != null ? terminal : queue.poll(timeout.toNanos(), TimeUnit.NANOSECONDS);
        if (o == null) throw new ConnectionException("timeout", "no event of request " + id + " within " + timeout, null);
        return take(o);
    }

    private synchronized Event take(Object o) {
        if (terminal != null) o = terminal;
        if (o == END) {
            terminal = END;
            return null;
        }
        if (o instanceof RealmException) {
            terminal = o;
            throw (RealmException) o;
        }
        return (Event) o;
    }

    /**
     * The events as a {@link RealmStream} (an iterator, and a {@link Flow.Publisher}). Closing it
     * before the end cancels the request on the server.
     */
    public RealmStream<Event> events() {
        return new RealmStream<>(new RealmStream.Source<Event>() {
            @Override public Event fetch() throws InterruptedException { return next(); }
            @Override public void close() { if (!result.isDone()) cancel(); }
            @Override public boolean finished() { return result.isDone(); }
        });
    }

    /** The whole answer, once {@code done} came (independent of reading the events). */
    public CompletableFuture<Result> result() { return result; }

    /** Waits for the whole answer (throws its {@link RealmException}). */
    public Result await() { return RealmClient.join(result); }

    /**
     * Cancels the request on the server: its running choices end with finish reason
     * {@code cancelled} and the request with {@code done}. Nothing happens once it has ended.
     */
    public void cancel() {
        if (!result.isDone()) conn.cancel(id);
    }

    @Override public String toString() { return "RealmRequest(" + id + ")"; }
}
