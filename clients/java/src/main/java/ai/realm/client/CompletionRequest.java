package ai.realm.client;

import java.util.List;

/**
 * The body of {@code POST /v1/completions} (and of a realm.v1 {@code complete}). The prompt is a
 * string, a list of strings, a list of token ids or a list of lists of ids.
 */
public final class CompletionRequest extends GenerationRequest<CompletionRequest> {
    public CompletionRequest(String prompt) { body.put("prompt", prompt); }

    public CompletionRequest(List<?> prompt) { body.put("prompt", prompt); }

    public static CompletionRequest of(String prompt) { return new CompletionRequest(prompt); }

    /** The number of log-probability alternatives per token (0-20). */
    public CompletionRequest logprobs(int n) { return set("logprobs", n); }
    public CompletionRequest echo(boolean on) { return set("echo", on); }
}
