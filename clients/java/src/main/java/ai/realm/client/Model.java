package ai.realm.client;

/** One entry of {@code GET /v1/models}. */
public final class Model {
    public String id;
    public String object;
    public long created;
    public String owned_by;
    public Integer max_model_len;

    public String id() { return id; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
