package ai.realm.client;

import com.google.gson.JsonElement;
import java.util.List;

/** A whole chat answer ({@code chat.completion}). */
public final class ChatCompletion {
    public String id;
    public String object;
    public long created;
    public String model;
    public String system_fingerprint;
    public List<Choice> choices;
    public Usage usage;
    /** One entry per choice. */
    public List<Timings> timings;

    public static final class Choice {
        public int index;
        public Message message;
        public String finish_reason;
        public JsonElement logprobs;

        public String finishReason() { return finish_reason; }
    }

    /** The first choice's text. */
    public String text() { return choices == null || choices.isEmpty() ? "" : choices.get(0).message.content; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
