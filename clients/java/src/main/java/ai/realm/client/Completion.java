package ai.realm.client;

import com.google.gson.JsonElement;
import java.util.List;

/** A whole text completion ({@code text_completion}); also the shape of its streamed chunks. */
public final class Completion {
    public String id;
    public String object;
    public long created;
    public String model;
    public String system_fingerprint;
    public List<Choice> choices;
    public Usage usage;
    /** A list when whole, an object per chunk. */
    public JsonElement timings;

    public static final class Choice {
        public int index;
        public String text;
        public String finish_reason;
        public JsonElement logprobs;

        public String finishReason() { return finish_reason; }
    }

    public String text() { return choices == null || choices.isEmpty() ? "" : choices.get(0).text; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
