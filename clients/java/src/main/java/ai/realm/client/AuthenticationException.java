package ai.realm.client;

import java.time.Duration;

/** A missing or unknown API key: status 401, code {@code invalid_api_key}. */
public class AuthenticationException extends RealmException {
    private static final long serialVersionUID = 1L;

    public AuthenticationException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
