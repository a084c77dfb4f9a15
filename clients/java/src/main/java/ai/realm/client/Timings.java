package ai.realm.client;

/** llama-server's timings of one choice, in milliseconds. */
public final class Timings {
    public double queue_ms;
    public int prompt_n;
    public int cache_n;
    public double prompt_ms;
    public double prompt_per_token_ms;
    public double prompt_per_second;
    public double ttft_ms;
    public int predicted_n;
    public double predicted_ms;
    public double predicted_per_token_ms;
    public double predicted_per_second;
    public int preemptions;

    public int predictedN() { return predicted_n; }
    public double ttftMs() { return ttft_ms; }

    @Override public String toString() { return Json.GSON.toJson(this); }
}
