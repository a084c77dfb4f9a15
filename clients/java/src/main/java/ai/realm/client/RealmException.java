package ai.realm.client;

import java.time.Duration;
import java.util.Optional;

/**
 * An error answered by realm-server (an HTTP error body, a refused WebSocket handshake, or a
 * realm.v1 {@code error} message), or raised by this client ({@link ConnectionException}).
 * Unchecked, so that it passes through iterators, {@code CompletableFuture}s and publishers as is.
 *
 * <p>The subclass follows the server's {@code code}: {@link AuthenticationException},
 * {@link RateLimitException}, {@link BadRequestException}, {@link PermissionDeniedException},
 * {@link NotFoundException}, {@link OverloadedException}, {@link ShuttingDownException},
 * {@link InternalServerException} (also for codes this client does not know).
 */
public class RealmException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String code;
    private final String param;
    private final Duration retryAfter;
    private final String requestId;

    public RealmException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        this(status, code, message, param, retryAfter, requestId, null);
    }

    public RealmException(int status, String code, String message, String param, Duration retryAfter, String requestId, Throwable cause) {
        super(message == null ? code : message, cause);
        this.status = status;
        this.code = code;
        this.param = param;
        this.retryAfter = retryAfter;
        this.requestId = requestId;
    }

    /** The HTTP status (over realm.v1: the status the code has over HTTP; 0 for connection errors). */
    public int status() { return status; }

    /** The server's error code ({@code invalid_api_key}, {@code rate_limit_exceeded}, ...). */
    public String code() { return code; }

    /** The field at fault, when the server named one ({@code messages}, {@code request.temperature}). */
    public String param() { return param; }

    /** The server's retry delay, or null when it gave none. */
    public Duration retryAfter() { return retryAfter; }

    /** The server's {@code X-Request-Id} of the HTTP answer, when there was one. */
    public Optional<String> requestId() { return Optional.ofNullable(requestId); }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(getClass().getSimpleName()).append('(').append(status).append(' ').append(code);
        if (param != null) b.append(", param ").append(param);
        if (retryAfter != null) b.append(", retry after ").append(retryAfter.toSeconds()).append(" s");
        return b.append("): ").append(getMessage()).toString();
    }

    /** The HTTP status of a code (PROTOCOL.md, "Errors"). */
    static int statusOf(String code) {
        if (code == null) return 500;
        switch (code) {
            case "invalid_request": case "context_length_exceeded": return 400;
            case "invalid_api_key": return 401;
            case "model_not_allowed": return 403;
            case "model_not_found": case "not_found": return 404;
            case "method_not_allowed": return 405;
            case "payload_too_large": return 413;
            case "rate_limit_exceeded": return 429;
            case "cancelled": return 499;
            case "server_overloaded": case "shutting_down": return 503;
            default: return 500;
        }
    }

    /** The exception type for a status and code (the code wins; the status decides for unknown codes). */
    public static RealmException of(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        if (code == null || code.isEmpty()) {
            switch (status) {
                case 401: code = "invalid_api_key"; break;
                case 403: code = "model_not_allowed"; break;
                case 404: code = "not_found"; break;
                case 413: code = "payload_too_large"; break;
                case 429: code = "rate_limit_exceeded"; break;
                case 503: code = "server_overloaded"; break;
                default: code = status >= 400 && status < 500 ? "invalid_request" : "internal";
            }
        }
        switch (code) {
            case "invalid_api_key": return new AuthenticationException(status, code, message, param, retryAfter, requestId);
            case "rate_limit_exceeded": return new RateLimitException(status, code, message, param, retryAfter, requestId);
            case "invalid_request": case "context_length_exceeded": case "payload_too_large": case "method_not_allowed":
                return new BadRequestException(status, code, message, param, retryAfter, requestId);
            case "model_not_allowed": return new PermissionDeniedException(status, code, message, param, retryAfter, requestId);
            case "model_not_found": case "not_found": return new NotFoundException(status, code, message, param, retryAfter, requestId);
            case "server_overloaded": return new OverloadedException(status, code, message, param, retryAfter, requestId);
            case "shutting_down": return new ShuttingDownException(status, code, message, param, retryAfter, requestId);
            default:
                if (status == 401) return new AuthenticationException(status, code, message, param, retryAfter, requestId);
                if (status == 429) return new RateLimitException(status, code, message, param, retryAfter, requestId);
                if (status == 400) return new BadRequestException(status, code, message, param, retryAfter, requestId);
                return new InternalServerException(status, code, message, param, retryAfter, requestId);
        }
    }
}
