package ai.realm.client;

import java.time.Duration;

/** The server's queue is full, the model is loading or no connection slot is free: status 503, code {@code server_overloaded}; retry after {@link #retryAfter()}. */
public class OverloadedException extends RealmException {
    private static final long serialVersionUID = 1L;

    public OverloadedException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
