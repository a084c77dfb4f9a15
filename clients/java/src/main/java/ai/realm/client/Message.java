package ai.realm.client;

/** One chat message: {@code role} ({@code system}, {@code user}, {@code assistant}) and its text. */
public final class Message {
    public String role;
    public String content;
    public String name;

    public Message() {}

    public Message(String role, String content) { this.role = role; this.content = content; }

    public static Message system(String content) { return new Message("system", content); }
    public static Message user(String content) { return new Message("user", content); }
    public static Message assistant(String content) { return new Message("assistant", content); }

    public String role() { return role; }
    public String content() { return content; }

    @Override public String toString() { return role + ": " + content; }
}
