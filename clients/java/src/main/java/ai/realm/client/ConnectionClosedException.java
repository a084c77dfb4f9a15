package ai.realm.client;

/**
 * A realm.v1 connection closed while a request was in flight, or a request was sent on a closed
 * connection. {@link #closeCode()}: the WebSocket close code (1000 closed by the client, 1001
 * the server is going away, 1009 message too big, 4001 slow consumer, 4002 idle timeout, 4003
 * protocol error, 1006 the connection was lost without a close frame).
 */
public class ConnectionClosedException extends ConnectionException {
    private static final long serialVersionUID = 1L;

    private final int closeCode;
    private final String reason;

    public ConnectionClosedException(int closeCode, String reason, Throwable cause) {
        super("connection_closed", "realm.v1 connection closed (" + closeCode + (reason == null || reason.isEmpty() ? "" : ": " + reason) + ")", cause);
        this.closeCode = closeCode;
        this.reason = reason;
    }

    /** The WebSocket close code (1006: lost without a close frame). */
    public int closeCode() { return closeCode; }

    /** The close frame's reason, or "" */
    public String reason() { return reason == null ? "" : reason; }
}
