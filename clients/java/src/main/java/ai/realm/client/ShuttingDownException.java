package ai.realm.client;

import java.time.Duration;

/** The server is draining for shutdown: status 503, code {@code shutting_down}; retry after {@link #retryAfter()}, here or at another replica. */
public class ShuttingDownException extends RealmException {
    private static final long serialVersionUID = 1L;

    public ShuttingDownException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
