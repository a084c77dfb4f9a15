package ai.realm.client;

/** A request's usage, in tokens. */
public final class Usage {
    public int prompt_tokens;
    public int completion_tokens;
    public int total_tokens;
    public Details prompt_tokens_details;

    public static final class Details {
        public int cached_tokens;
    }

    public int promptTokens() { return prompt_tokens; }
    public int completionTokens() { return completion_tokens; }
    public int totalTokens() { return total_tokens; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
