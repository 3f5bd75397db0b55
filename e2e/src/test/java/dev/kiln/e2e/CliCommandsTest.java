package dev.kiln.e2e;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.controller.KilnCli;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * launch, ls -o json and extend on the local provider, as a user types them: real kiln-agent
 * processes, no volumes.
 */
class CliCommandsTest {

    @TempDir
    Path dir;

    Kiln kiln;

    @BeforeEach
    void setUp() throws Exception {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() {
        for (JsonElement e : ls()) {
            kiln.run("terminate", e.getAsJsonObject().get("id").getAsString(), "--force");
        }
    }

    JsonArray ls() {
        Kiln.Run ls = kiln.run("ls", "-o", "json");
        assertEquals(0, ls.exitCode(), ls.toString());
        return JsonParser.parseString(ls.out()).getAsJsonArray();
    }

    Instant agentDeadline(String id) {
        Kiln.Run status = kiln.run("status", "--agent", id, "-o", "json");
        assertEquals(0, status.exitCode(), status.toString());
        return Instant.parse(JsonParser.parseString(status.out()).getAsJsonObject().getAsJsonObject("lease").get("deadline").getAsString());
    }

    @Test
    void launchPrintsTheAgentsOwnDeadlineAndLsJsonHasRealObjects() {
        Kiln.Run launch = kiln.run("launch", "--ttl", "30m", "--label", "quickstart=vibes");
        assertEquals(0, launch.exitCode(), launch.toString());
        String[] row = launch.out().lines().skip(1).findFirst().orElseThrow().split("\\s+");
        String id = row[0];
        assertEquals(agentDeadline(id).truncatedTo(ChronoUnit.SECONDS).toString(), row[4],
                "EXPIRES is the deadline the agent keeps: " + launch.out());

        JsonArray list = ls();
        assertEquals(1, list.size(), list.toString());
        JsonObject o = list.get(0).getAsJsonObject();
        assertEquals(id, o.get("id").getAsString());
        assertEquals("worker", o.get("role").getAsString());
        assertTrue(o.get("labels").isJsonObject(), o.toString());
        assertEquals("vibes", o.getAsJsonObject("labels").get("quickstart").getAsString());
        assertEquals("running", o.get("state").getAsString());
        assertEquals("ready", o.get("agent").getAsString());
        Instant.parse(o.get("launched_at").getAsString());
        Instant.parse(o.get("expires_at").getAsString());
        JsonObject status = o.getAsJsonObject("status");
        assertEquals(id, status.get("instance_id").getAsString(), "the agent reports its instance's id: " + status);
        assertTrue(status.get("uptime").getAsString().matches("\\d+(\\.\\d+)?s"), "durations are seconds with an s: " + status);
        String remaining = status.getAsJsonObject("lease").get("remaining").getAsString();
        assertTrue(Double.parseDouble(remaining.substring(0, remaining.length() - 1)) > 25 * 60, status.toString());
        Instant.parse(status.get("started_at").getAsString());
        assertTrue(status.get("ssh_port").getAsJsonPrimitive().isNumber(), status.toString());
    }

    @Test
    void extendTakesTheInstanceAndUntilAndRefusesATimeInThePast() {
        Kiln.Run launch = kiln.run("launch", "--ttl", "30m");
        assertEquals(0, launch.exitCode(), launch.toString());
        String id = launch.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        Instant before = agentDeadline(id);

        Instant until = before.plus(Duration.ofMinutes(20)).truncatedTo(ChronoUnit.SECONDS);
        Kiln.Run extend = kiln.run("extend", id, "--until", until.toString());
        assertEquals(0, extend.exitCode(), extend.toString());
        assertEquals(until, agentDeadline(id));

        // An instance without volumes serves nothing: pull says so, and how to launch one that does.
        Path dest = dir.resolve("opus");
        Kiln.Run pull = kiln.run("pull", id, "opus", dest.toString());
        assertEquals(8, pull.exitCode(), pull.toString());
        assertTrue(pull.err().contains("serves only when it has a volume: launch one with e.g. --volume builds:latest"), pull.err());
        assertFalse(Files.exists(dest), "no DEST left behind");

        Kiln.Run past = kiln.run("extend", id, "--until", "2020-01-01T00:00:00Z");
        assertEquals(2, past.exitCode(), past.toString());
        assertTrue(past.err().contains("--until 2020-01-01T00:00:00Z is in the past"), past.err());
        assertTrue(past.err().contains("`kiln stop " + id + "`"), past.err());
        assertEquals(until, agentDeadline(id), "a refused extend changes nothing");

        Kiln.Run earlier = kiln.run("extend", id, "--until", before.plus(Duration.ofMinutes(5)).toString());
        assertEquals(0, earlier.exitCode(), earlier.toString());
        assertTrue(earlier.err().contains("the deadline was already later than"), earlier.err());
        assertEquals(until, agentDeadline(id), "extend never moves a deadline earlier");
    }

    @Test
    void bashCompletionOffersTheFleetsInstanceIds() throws Exception {
        Kiln.Run launch = kiln.run("launch", "--ttl", "30m");
        assertEquals(0, launch.exitCode(), launch.toString());
        String id = launch.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
        Path script = Files.writeString(dir.resolve("kiln.bash"), kiln.run("completion").out());
        // The completion script calls back the kiln the user typed: here a kiln in this test's home.
        Path jar = Path.of(KilnCli.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        String java = ProcessHandle.current().info().command().orElse("java");
        Path home = dir.resolve("home");
        Path program = Files.writeString(dir.resolve("kiln"), "#!/bin/sh\nexport HOME='%s' XDG_CONFIG_HOME='%s' XDG_STATE_HOME='%s'\nexec '%s' -jar '%s' \"$@\"\n"
                .formatted(home, home.resolve(".config"), home.resolve(".local/state"), java, jar));
        Files.setPosixFilePermissions(program, PosixFilePermissions.fromString("rwxr-xr-x"));
        Process bash = new ProcessBuilder("bash", "-c", "source '" + script + "'; COMP_WORDS=('" + program + "' extend ''); COMP_CWORD=2;"
                + " _kiln_complete_fleet; printf '%s\\n' \"${COMPREPLY[@]}\"").redirectErrorStream(true).start();
        String offered = new String(bash.getInputStream().readAllBytes());
        assertEquals(0, bash.waitFor());
        assertTrue(offered.lines().anyMatch(id::equals), "completion of `kiln extend <TAB>` offers " + id + ": " + offered);
    }

    @Test
    void aVolumeRoleGivenTwiceIsRefusedBeforeAnythingIsLaunched() {
        Kiln.Run twice = kiln.env("KILN_LOCAL_VOLUMES", "dirs").run("launch", "--volume", "builds:1", "--volume", "builds:latest");
        assertEquals(2, twice.exitCode(), twice.toString());
        assertTrue(twice.err().contains("--volume gives the role 'builds' 2 times (builds:1, builds:latest)"), twice.err());
        assertFalse(twice.err().contains("launching"), "refused before launching: " + twice.err());
        assertEquals(0, ls().size(), "no instance was launched");
    }
}
