package ai.realm.client;

/** The server's first realm.v1 message: the protocol, the model and the connection's limits. */
public final class Hello {
    public String protocol;
    public String server;
    public String model;
    public int max_in_flight;
    public long max_message_bytes;
    public int idle_timeout_s;

    public String model() { return model; }
    public int maxInFlight() { return max_in_flight; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
