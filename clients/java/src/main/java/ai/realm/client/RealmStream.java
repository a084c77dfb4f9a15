package ai.realm.client;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A stream of a request's events: a closeable, blocking {@link Iterator} (use it in
 * try-with-resources and a for-each loop) that is also a {@link Flow.Publisher} (one subscriber;
 * its events are delivered on a thread of their own as the subscriber requests them).
 *
 * <p>It pulls: nothing is read from the network before it is asked for, so a slow reader holds
 * the server back (TCP back-pressure) instead of growing a buffer here. {@link #close()} (or
 * cancelling the subscription, or leaving a try-with-resources block) cancels the request on the
 * server: over HTTP by closing the response, over realm.v1 by a {@code cancel}. A failure is
 * thrown from {@link #hasNext()} as a {@link RealmException} (a {@link ConnectionException} when
 * the connection broke), or handed to the subscriber's {@code onError}.
 */
public final class RealmStream<T> implements Iterator<T>, Iterable<T>, AutoCloseable, Flow.Publisher<T> {
    /** Where the events come from (internal). */
    interface Source<T> {
        /** The next event, or null at the end; blocks. */
        T fetch() throws Exception;

        /** Stops the request (idempotent; may be called from any thread, also while fetch blocks). */
        void close();

        /** Whether the request has already ended (then close need not cancel anything). */
        default boolean finished() { return false; }
    }

    private final Source<T> source;
    private T next;
    private boolean done;
    private volatile boolean closed;
    private final AtomicBoolean subscribed = new AtomicBoolean();

    RealmStream(Source<T> source) { this.source = source; }

    @Override
    public synchronized boolean hasNext() {
        if (next != null) return true;
        if (done || closed) return false;
        try {
            next = source.fetch();
        } catch (RealmException e) {
            done = true;
            source.close();
            if (closed && e instanceof ConnectionException && !(e instanceof ConnectionClosedException)) return false;
            throw e;
        } catch (Exception e) {
            done = true;
            source.close();
            if (closed) return false;
            if (e instanceof InterruptedException) Thread.currentThread().interrupt();
            throw new ConnectionException("the stream broke: " + e, e);
        }
        if (next == null) {
            done = true;
            source.close();
            return false;
        }
        return true;
    }

    @Override
    public synchronized T next() {
        if (!hasNext()) throw new NoSuchElementException();
        T t = next;
        next = null;
        return t;
    }

    @Override
    public Iterator<T> iterator() { return this; }

    /** The rest of the events as a sequential {@link Stream}; closing it closes this. */
    public Stream<T> stream() {
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(this, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(this::close);
    }

    /** Stops reading and cancels the request on the server if it is still running. Idempotent. */
    @Override
    public void close() {
        closed = true;
        source.close();
    }

    public boolean isClosed() { return closed; }

    @Override
    public void subscribe(Flow.Subscriber<? super T> s) {
        if (!subscribed.compareAndSet(false, true)) {
            s.onSubscribe(new Flow.Subscription() {
                public void request(long n) {}
                public void cancel() {}
            });
            s.onError(new IllegalStateException("a RealmStream takes one subscriber"));
            return;
        }
        final AtomicLong demand = new AtomicLong();
        final Object lock = new Object();
        final AtomicBoolean cancelled = new AtomicBoolean();
        final AtomicBoolean started = new AtomicBoolean();
        final Runnable loop = () -> {
            try {
                while (true) {
                    synchronized (lock) {
                        while (demand.get() == 0 && !cancelled.get()) lock.wait();
                    }
                    if (cancelled.get()) return;
                    boolean has;
                    try {
                        has = hasNext();
                    } catch (Throwable e) {
                        if (!cancelled.get()) s.onError(e);
                        return;
                    }
                    if (!has) {
                        if (!cancelled.get()) s.onComplete();
                        return;
                    }
                    T t = next();
                    demand.decrementAndGet();
                    s.onNext(t);
                }
            } catch (InterruptedException e) {
                close();
            }
        };
        s.onSubscribe(new Flow.Subscription() {
            @Override
            public void request(long n) {
                if (n <= 0) {
                    cancel();
                    s.onError(new IllegalArgumentException("request(" + n + "): rule 3.9, n must be positive"));
                    return;
                }
                demand.getAndUpdate(d -> d + n < 0 ? Long.MAX_VALUE : d + n);
                synchronized (lock) { lock.notifyAll(); }
                if (started.compareAndSet(false, true)) {
                    Thread t = new Thread(loop, "realm-stream-publisher");
                    t.setDaemon(true);
                    t.start();
                }
            }

            @Override
            public void cancel() {
                cancelled.set(true);
                close();
                synchronized (lock) { lock.notifyAll(); }
            }
        });
    }
}
