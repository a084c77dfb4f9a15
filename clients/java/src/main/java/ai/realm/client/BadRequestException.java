package ai.realm.client;

import java.time.Duration;

/** A request the server refused as malformed or out of range (400/413: {@code invalid_request}, {@code context_length_exceeded}, {@code payload_too_large}); {@link #param()} names the field at fault. */
public class BadRequestException extends RealmException {
    private static final long serialVersionUID = 1L;

    public BadRequestException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
