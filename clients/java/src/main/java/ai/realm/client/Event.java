package ai.realm.client;

import com.google.gson.JsonElement;
import java.util.List;

/**
 * One realm.v1 message about a request: {@code created}, {@code delta} or {@code done}
 * (an {@code error} is thrown as a {@link RealmException} instead). Fields of other types are null/0.
 */
public final class Event {
    public String type;
    public String id;
    // created
    public String model;
    public int prompt_tokens;
    // delta
    public int index;
    public String text;
    public List<Integer> tokens;
    public JsonElement logprobs;
    // done
    public List<DoneChoice> choices;
    public Usage usage;
    // error (only seen by the client itself)
    String code;
    String message;
    String param;
    Long retry_after_s;

    /** A choice's end in {@code done}. */
    public static final class DoneChoice {
        public int index;
        public String finish_reason;
        public Timings timings;

        public String finishReason() { return finish_reason; }
    }

    public String type() { return type; }
    public boolean isCreated() { return "created".equals(type); }
    public boolean isDelta() { return "delta".equals(type); }
    public boolean isDone() { return "done".equals(type); }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
