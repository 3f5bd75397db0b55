package dev.kiln.controller.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Duration;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.CommandBuild;
import dev.kiln.proto.agent.v1.Lease;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import dev.kiln.proto.agent.v1.StartBuildRequest;
import dev.kiln.proto.agent.v1.StatusResponse;
import dev.kiln.proto.agent.v1.TupBuild;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shape docs/cli.md promises for -o json, and that protobuf's own parser reads it back. */
class JsonTest {

    static String print(Object value) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Json.print(new PrintStream(bytes, true, StandardCharsets.UTF_8), value);
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void anAgentsAnswerHasNumbersTimesLabelsAndEveryFieldAndReadsBackIntoTheMessage() throws Exception {
        ListBuildsResponse list = ListBuildsResponse.newBuilder()
                .addBuilds(Build.newBuilder().setId("b-1").setState(BuildState.BUILD_STATE_SUCCEEDED)
                        .setStartedAt(Timestamp.newBuilder().setSeconds(1_795_000_000L).setNanos(120_000_000))
                        .setLogSizeBytes(5_000_000_000L)
                        .setRequest(StartBuildRequest.newBuilder().setWorkTree("/srv/work/vibes").putLabels("quickstart", "vibes")
                                .setTup(TupBuild.newBuilder().addProfiles("opus"))))
                .addBuilds(Build.newBuilder().setId("b-2")
                        .setRequest(StartBuildRequest.newBuilder().setCommand(CommandBuild.newBuilder().addArgv("true"))))
                .build();
        String text = print(list);
        JsonObject first = JsonParser.parseString(text).getAsJsonObject().getAsJsonArray("builds").get(0).getAsJsonObject();
        assertTrue(first.get("log_size_bytes").getAsJsonPrimitive().isNumber(), text);
        assertEquals(5_000_000_000L, first.get("log_size_bytes").getAsLong());
        assertEquals("2026-11-18T11:06:40.120Z", first.get("started_at").getAsString());
        assertTrue(first.get("ended_at").isJsonNull(), "an unset time is null: " + text);
        assertEquals("BUILD_STATE_SUCCEEDED", first.get("state").getAsString());
        JsonObject request = first.getAsJsonObject("request");
        assertEquals("vibes", request.getAsJsonObject("labels").get("quickstart").getAsString());
        assertFalse(request.has("command"), "only the chosen alternative of a oneof: " + text);
        assertTrue(request.get("queue").getAsJsonPrimitive().isBoolean(), "defaults are present: " + text);

        ListBuildsResponse.Builder back = ListBuildsResponse.newBuilder();
        JsonFormat.parser().merge(text, back);
        assertEquals(list, back.build());
    }

    @Test
    void durationsAreProtobufsSecondsAndAStatusReadsBack() throws Exception {
        StatusResponse status = StatusResponse.newBuilder().setInstanceId("local-1a2b3c4d").setSshPort(2222)
                .setUptime(Duration.newBuilder().setSeconds(3600))
                .setLease(Lease.newBuilder().setRemaining(Duration.newBuilder().setSeconds(1).setNanos(500_000_000)))
                .build();
        String text = print(status);
        JsonObject o = JsonParser.parseString(text).getAsJsonObject();
        assertEquals("3600s", o.get("uptime").getAsString());
        assertEquals("1.500s", o.getAsJsonObject("lease").get("remaining").getAsString());
        assertEquals(2222, o.get("ssh_port").getAsInt());
        assertTrue(o.get("current_build").isJsonNull(), text);
        StatusResponse.Builder back = StatusResponse.newBuilder();
        JsonFormat.parser().merge(text, back);
        assertEquals(status, back.build());
    }
}
