package dev.kiln.controller.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Duration;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Durations;

import java.io.PrintStream;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * {@code -o json}, the same shape for every command (docs/cli.md, "JSON output"): an agent's
 * answer in protobuf's JSON mapping of agent.proto (field and enum names as written there, times
 * as ISO-8601 UTC strings, durations as "3600s", maps such as labels as objects), so any protobuf
 * JSON parser reads it back, with every field present (an unset message is {@code null}; of a
 * oneof, only the alternative that is set) and
 * numbers as JSON numbers, 64-bit ones too.
 */
final class Json {

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeNulls().disableHtmlEscaping().create();

    private Json() {
    }

    /** Prints {@code value} (a JsonElement, or a proto message) on its own lines. */
    static void print(PrintStream out, Object value) {
        JsonElement json = value instanceof MessageOrBuilder m ? of(m) : (JsonElement) value;
        out.println(GSON.toJson(json));
    }

    /** A proto message as a JSON object, by the rules above. */
    static JsonElement of(MessageOrBuilder message) {
        if (message instanceof Timestamp t) {
            return time(Instant.ofEpochSecond(t.getSeconds(), t.getNanos()));
        }
        if (message instanceof Duration d) {
            return new JsonPrimitive(Durations.toString(d));
        }
        JsonObject o = new JsonObject();
        for (FieldDescriptor f : message.getDescriptorForType().getFields()) {
            if (f.getContainingOneof() != null && !message.hasField(f)) {
                continue; // one alternative is chosen: the others are absent, as protobuf's parsers expect
            }
            Object v = message.getField(f);
            if (f.isMapField()) {
                JsonObject map = new JsonObject();
                for (Object entry : (List<?>) v) {
                    MessageOrBuilder e = (MessageOrBuilder) entry;
                    FieldDescriptor key = e.getDescriptorForType().findFieldByName("key");
                    FieldDescriptor val = e.getDescriptorForType().findFieldByName("value");
                    map.add(String.valueOf(e.getField(key)), value(val, e.getField(val)));
                }
                o.add(f.getName(), map);
            } else if (f.isRepeated()) {
                JsonArray a = new JsonArray();
                ((List<?>) v).forEach(item -> a.add(value(f, item)));
                o.add(f.getName(), a);
            } else if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && !message.hasField(f)) {
                o.add(f.getName(), JsonNull.INSTANCE);
            } else {
                o.add(f.getName(), value(f, v));
            }
        }
        return o;
    }

    private static JsonElement value(FieldDescriptor f, Object v) {
        return switch (f.getJavaType()) {
            case INT, LONG, FLOAT, DOUBLE -> new JsonPrimitive((Number) v);
            case BOOLEAN -> new JsonPrimitive((Boolean) v);
            case STRING -> new JsonPrimitive((String) v);
            case BYTE_STRING -> new JsonPrimitive(Base64.getEncoder().encodeToString(((ByteString) v).toByteArray()));
            case ENUM -> new JsonPrimitive(((com.google.protobuf.Descriptors.EnumValueDescriptor) v).getName());
            case MESSAGE -> of((MessageOrBuilder) v);
        };
    }

    /** An instant as ISO-8601 UTC, or null. */
    static JsonElement time(Instant t) {
        return t == null ? JsonNull.INSTANCE : new JsonPrimitive(t.toString());
    }

    /** A string, or null when empty or absent. */
    static JsonElement text(String s) {
        return s == null || s.isEmpty() ? JsonNull.INSTANCE : new JsonPrimitive(s);
    }

    /** String pairs as an object. */
    static JsonObject object(Map<String, String> map) {
        JsonObject o = new JsonObject();
        map.forEach(o::addProperty);
        return o;
    }
}
