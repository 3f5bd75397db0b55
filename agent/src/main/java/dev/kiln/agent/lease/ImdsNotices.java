package dev.kiln.agent.lease;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.agent.instance.MetadataSource;

import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Reads EC2's interruption notices from IMDS: a spot interruption
 * ({@code spot/instance-action}), a rebalance recommendation
 * ({@code events/recommendations/rebalance}) and scheduled events
 * ({@code events/maintenance/scheduled}, only those whose State is active: a stop or retirement,
 * and the reboots and system maintenance that {@link LeaseKeeper} reports without ending the
 * instance).
 */
public final class ImdsNotices implements NoticeSource {

    private static final DateTimeFormatter EVENT_TIME = DateTimeFormatter.ofPattern("d MMM yyyy HH:mm:ss z", Locale.ROOT);

    private final MetadataSource imds;

    public ImdsNotices(MetadataSource imds) {
        this.imds = imds;
    }

    private static String oneLine(String s) {
        return s.strip().replaceAll("\\s+", " ");
    }

    @Override
    public List<Notice> poll() throws Exception {
        List<Notice> notices = new ArrayList<>();
        Optional<String> spot = imds.optional("spot/instance-action");
        if (spot.isPresent()) {
            JsonObject o = JsonParser.parseString(spot.get()).getAsJsonObject();
            Instant by = o.has("time") ? Instant.parse(o.get("time").getAsString()) : null;
            notices.add(new Notice(EndReason.SPOT_INTERRUPTION, "spot instance-action " + oneLine(spot.get()), by));
        }
        Optional<String> rebalance = imds.optional("events/recommendations/rebalance");
        if (rebalance.isPresent()) {
            notices.add(new Notice(EndReason.REBALANCE_RECOMMENDATION, "rebalance recommendation " + oneLine(rebalance.get()), null));
        }
        Optional<String> scheduled = imds.optional("events/maintenance/scheduled");
        if (scheduled.isPresent() && !scheduled.get().isBlank()) {
            JsonElement doc = JsonParser.parseString(scheduled.get());
            JsonArray events = doc.isJsonArray() ? doc.getAsJsonArray() : new JsonArray();
            for (JsonElement e : events) {
                JsonObject ev = e.getAsJsonObject();
                String state = ev.has("State") ? ev.get("State").getAsString() : "";
                String code = ev.has("Code") ? ev.get("Code").getAsString() : "";
                if (!state.equalsIgnoreCase("active") || !(code.startsWith("instance-") || code.startsWith("system-"))) {
                    continue;
                }
                Instant by = null;
                if (ev.has("NotBefore")) {
                    try {
                        by = ZonedDateTime.parse(ev.get("NotBefore").getAsString(), EVENT_TIME).toInstant();
                    } catch (RuntimeException ignored) {
                        // an unreadable time: act now rather than never
                    }
                }
                notices.add(new Notice(EndReason.SCHEDULED_EVENT, "scheduled event " + code + " " + oneLine(ev.toString()), by, code));
            }
        }
        return notices;
    }
}
