package ai.realm.client;

/**
 * The server could not be reached, or the connection broke (status 0, code
 * {@code connection_error}; {@code timeout} when the client's timeout ran out; {@code protocol_error}
 * when the server sent something this client cannot read).
 */
public class ConnectionException extends RealmException {
    private static final long serialVersionUID = 1L;

    public ConnectionException(String code, String message, Throwable cause) {
        super(0, code, message, null, null, null, cause);
    }

    public ConnectionException(String message, Throwable cause) {
        this("connection_error", message, cause);
    }
}
