package ai.realm.client;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The body of {@code POST /v1/chat/completions} (and of a realm.v1 {@code chat}):
 * {@code new ChatRequest().user("Hi").maxTokens(32).seed(1)}. A fluent, mutable builder.
 */
public final class ChatRequest extends GenerationRequest<ChatRequest> {
    private final List<Message> messages = new ArrayList<>();

    public ChatRequest() { body.put("messages", messages); }

    public static ChatRequest of(Message... messages) { return new ChatRequest().messages(Arrays.asList(messages)); }

    public ChatRequest messages(List<Message> ms) { messages.addAll(ms); return this; }
    public ChatRequest message(String role, String content) { messages.add(new Message(role, content)); return this; }
    public ChatRequest system(String content) { return message("system", content); }
    public ChatRequest user(String content) { return message("user", content); }
    public ChatRequest assistant(String content) { return message("assistant", content); }
    public ChatRequest maxCompletionTokens(int n) { return set("max_completion_tokens", n); }
    public ChatRequest logprobs(boolean on) { return set("logprobs", on); }
    public ChatRequest topLogprobs(int n) { return set("top_logprobs", n); }

    public List<Message> messages() { return messages; }
}
