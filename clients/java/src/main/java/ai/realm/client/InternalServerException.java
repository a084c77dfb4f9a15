package ai.realm.client;

import java.time.Duration;

/** A fault in the server (code {@code internal}, status 500), or a code this client does not know. */
public class InternalServerException extends RealmException {
    private static final long serialVersionUID = 1L;

    public InternalServerException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
