package ai.realm.client;

import com.google.gson.JsonElement;
import java.util.List;

/**
 * One event of a streamed chat answer ({@code chat.completion.chunk}). A choice's last chunk has
 * its {@code finish_reason} and {@code timings}; with usage on (the default) the last chunk has
 * no choices and the {@code usage}.
 */
public final class ChatChunk {
    public String id;
    public String object;
    public long created;
    public String model;
    public String system_fingerprint;
    public List<Choice> choices;
    public Usage usage;
    public Timings timings;

    public static final class Choice {
        public int index;
        public Delta delta;
        public String finish_reason;
        public JsonElement logprobs;
        public Timings timings;

        public String finishReason() { return finish_reason; }
    }

    public static final class Delta {
        public String role;
        public String content;
    }

    /** The text this chunk adds to its first choice ("" when none). */
    public String text() {
        if (choices == null) return "";
        StringBuilder b = new StringBuilder();
        for (Choice c : choices) if (c.delta != null && c.delta.content != null) b.append(c.delta.content);
        return b.toString();
    }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
