package ai.realm.client;

import java.time.Duration;

/** No such model or route: status 404, code {@code model_not_found} or {@code not_found}. */
public class NotFoundException extends RealmException {
    private static final long serialVersionUID = 1L;

    public NotFoundException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
