package ai.realm.client;

import java.time.Duration;

/** The key's tenant may not use this model: status 403, code {@code model_not_allowed}. */
public class PermissionDeniedException extends RealmException {
    private static final long serialVersionUID = 1L;

    public PermissionDeniedException(int status, String code, String message, String param, Duration retryAfter, String requestId) {
        super(status, code, message, param, retryAfter, requestId);
    }
}
