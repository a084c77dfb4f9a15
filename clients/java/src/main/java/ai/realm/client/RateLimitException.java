package ai.realm.client;

import java.time.Duration;

/**
 * Over the tenant's requests or tokens per minute, its concurrent requests, or a connection's
 * {@code max_in_flight}: status 429, code {@code rate_limit_exceeded}. {@link #retryAfter()} is
 * the server's delay ({@code Retry-After} over HTTP, {@code retry_after_s} over realm.v1).
 */
public class RateLimitException extends RealmException {
    private static final long serialVersionUID = 1L;

    public RateLimitException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
