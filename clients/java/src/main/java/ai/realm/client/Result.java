package ai.realm.client;

import java.util.List;

/** A realm.v1 request's whole answer: every choice's text, its finish reason and timings, the usage. */
public final class Result {
    private final String id;
    private final String model;
    private final int promptTokens;
    private final List<String> texts;
    private final List<Event.DoneChoice> choices;
    private final Usage usage;

    Result(String id, String model, int promptTokens, List<String> texts, List<Event.DoneChoice> choices, Usage usage) {
        this.id = id;
        this.model = model;
        this.promptTokens = promptTokens;
        this.texts = List.copyOf(texts);
        this.choices = choices == null ? List.of() : List.copyOf(choices);
        this.usage = usage;
    }

    public String id() { return id; }
    public String model() { return model; }
    public int promptTokens() { return promptTokens; }
    /** Choice {@code i}'s text. */
    public String text(int i) { return i < texts.size() ? texts.get(i) : ""; }
    /** The first choice's text. */
    public String text() { return text(0); }
    public List<String> texts() { return texts; }
    /** The choices of {@code done}, in index order. */
    public List<Event.DoneChoice> choices() { return choices; }
    /** The first choice's finish reason ({@code stop}, {@code length}, {@code cancelled}). */
    public String finishReason() { return choices.isEmpty() ? null : choices.get(0).finish_reason; }
    public Usage usage() { return usage; }

    @Override public String toString() { return "Result" + texts + " " + finishReason() + " " + usage; }
}
