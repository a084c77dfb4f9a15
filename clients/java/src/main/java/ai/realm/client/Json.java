package ai.realm.client;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/** The client's gson instance and small helpers (internal). */
final class Json {
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private Json() {}

    static JsonObject parseObject(String s) {
        JsonElement e = JsonParser.parseString(s);
        if (!e.isJsonObject()) throw new IllegalStateException("not a JSON object");
        return e.getAsJsonObject();
    }

    static String str(JsonObject o, String k) {
        JsonElement e = o == null ? null : o.get(k);
        return e == null || e.isJsonNull() || !e.isJsonPrimitive() ? null : e.getAsString();
    }

    static Long num(JsonObject o, String k) {
        JsonElement e = o == null ? null : o.get(k);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) return null;
        return e.getAsLong();
    }
}
