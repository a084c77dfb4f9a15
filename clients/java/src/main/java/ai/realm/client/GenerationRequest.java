package ai.realm.client;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The fields that chat and completion requests share (OpenAI's, and realm-server's extensions
 * {@code top_k}, {@code min_p}, {@code repeat_penalty}, {@code ignore_eos}). Fields left unset are
 * left out of the body (the server's defaults: llama.cpp's). {@link #set} adds any other field.
 */
public abstract class GenerationRequest<T extends GenerationRequest<T>> {
    final Map<String, Object> body = new LinkedHashMap<>();

    @SuppressWarnings("unchecked")
    private T self() { return (T) this; }

    /** Any field of the request body, as gson serialises it (null removes it). */
    public T set(String field, Object value) {
        if (value == null) body.remove(field); else body.put(field, value);
        return self();
    }

    public Object get(String field) { return body.get(field); }

    public T model(String model) { return set("model", model); }
    public T maxTokens(int n) { return set("max_tokens", n); }
    public T n(int n) { return set("n", n); }
    public T temperature(double t) { return set("temperature", t); }
    public T topP(double p) { return set("top_p", p); }
    public T topK(int k) { return set("top_k", k); }
    public T minP(double p) { return set("min_p", p); }
    public T frequencyPenalty(double p) { return set("frequency_penalty", p); }
    public T presencePenalty(double p) { return set("presence_penalty", p); }
    public T repeatPenalty(double p) { return set("repeat_penalty", p); }
    public T repeatLastN(int n) { return set("repeat_last_n", n); }
    public T seed(long seed) { return set("seed", seed); }
    public T stop(String... stop) { return set("stop", Arrays.asList(stop)); }
    public T stop(List<String> stop) { return set("stop", stop); }
    public T ignoreEos(boolean on) { return set("ignore_eos", on); }
    public T user(String user) { return set("user", user); }

    /** A copy of the body with {@code stream} set (and usage asked for when streamed). */
    Map<String, Object> body(boolean stream) {
        Map<String, Object> b = new LinkedHashMap<>(body);
        if (stream) {
            b.put("stream", true);
            if (!b.containsKey("stream_options")) b.put("stream_options", Map.of("include_usage", true));
        } else {
            b.remove("stream");
            b.remove("stream_options");
        }
        return b;
    }

    /** The body sent in a realm.v1 message (there every request streams). */
    Map<String, Object> wsBody() {
        Map<String, Object> b = new LinkedHashMap<>(body);
        b.remove("stream");
        b.remove("stream_options");
        return b;
    }

    @Override public String toString() { return Json.GSON.toJson(body); }
}
