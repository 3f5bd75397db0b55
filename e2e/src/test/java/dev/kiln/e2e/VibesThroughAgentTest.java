package dev.kiln.e2e;

import com.google.protobuf.util.JsonFormat;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.BuildState;
import dev.kiln.proto.agent.v1.ListBuildsResponse;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The example collection built through `kiln build` on a real agent, as the build user. */
class VibesThroughAgentTest {

    static final Path EXAMPLE = Path.of("../examples/vibes").toAbsolutePath().normalize();

    @TempDir
    Path dir;

    Build lastBuild(LocalFleet fleet) throws Exception {
        Kiln.Run list = fleet.kiln.run("builds", "--agent", fleet.address(), "-o", "json", "--limit", "1");
        ListBuildsResponse.Builder b = ListBuildsResponse.newBuilder();
        JsonFormat.parser().merge(list.out(), b);
        return b.getBuilds(0);
    }

    @Test
    void buildsAllProfilesThenOnlyWhatChangedAndReportsProgress() throws Exception {
        for (String tool : List.of("tup", "sox", "flac", "lame", "oggenc", "opusenc")) {
            Prerequisites.requireCommand(tool, "apt-get install tup fuse3 sox flac lame vorbis-tools opus-tools");
        }
        try (LocalFleet fleet = new LocalFleet(dir).start()) {
            Path tree = dir.resolve("music");
            Process gen = new ProcessBuilder(EXAMPLE.resolve("generate").toString(), tree.toString(), "--small")
                    .redirectErrorStream(true).start();
            gen.getInputStream().readAllBytes();
            assertTrue(gen.waitFor(120, TimeUnit.SECONDS) && gen.exitValue() == 0, "generate");
            LocalFleet.workTree(dir, "music");

            Kiln.Run full = fleet.kiln.run("build", "--agent", fleet.address(), tree.toString(),
                    "--profiles-dir", EXAMPLE.resolve("profiles").toString());
            assertEquals(0, full.exitCode(), full.err() + full.out());
            Build first = lastBuild(fleet);
            assertEquals(BuildState.BUILD_STATE_SUCCEEDED, first.getState());
            assertTrue(first.getProgress().getTotal() > 32, "8 tracks x 4 profiles plus playlists: " + first.getProgress());
            assertEquals(first.getProgress().getTotal(), first.getProgress().getDone());

            Path title = Files.list(tree.resolve("aurora-drift")).filter(Files::isDirectory).findFirst().orElseThrow();
            Path track = Files.list(title).filter(p -> p.toString().endsWith(".TITLE")).sorted().findFirst().orElseThrow();
            Files.writeString(track, "A New Title\n");
            Kiln.Run retag = fleet.kiln.run("build", "--agent", fleet.address(), tree.toString());
            assertEquals(0, retag.exitCode(), retag.err());
            Build second = lastBuild(fleet);
            assertEquals(4, second.getProgress().getTotal(), "one track re-encoded in each of 4 profiles:\n" + retag.out());

            Kiln.Run only = fleet.kiln.run("build", "--agent", fleet.address(), tree.toString(), "-p", "flac");
            assertEquals(0, only.exitCode(), only.err());
            assertTrue(only.out().contains("No commands to execute."), only.out());
        }
    }

    @Test
    void aProfileWithInvalidFlagsFailsWithTheEncodersErrorInTheLog() throws Exception {
        for (String tool : List.of("tup", "sox", "lame")) {
            Prerequisites.requireCommand(tool, "apt-get install tup fuse3 sox lame");
        }
        try (LocalFleet fleet = new LocalFleet(dir).start()) {
            Path tree = dir.resolve("music");
            Process gen = new ProcessBuilder(EXAMPLE.resolve("generate").toString(), tree.toString(), "--small")
                    .redirectErrorStream(true).start();
            gen.getInputStream().readAllBytes();
            assertTrue(gen.waitFor(120, TimeUnit.SECONDS) && gen.exitValue() == 0, "generate");
            LocalFleet.workTree(dir, "music");
            Path profiles = Files.createDirectories(dir.resolve("profiles"));
            Files.writeString(profiles.resolve("broken.config"), "CONFIG_ENCODER=lame\nCONFIG_LAME_FLAGS=--no-such-flag\n");

            Kiln.Run run = fleet.kiln.run("build", "--agent", fleet.address(), tree.toString(),
                    "--profiles-dir", profiles.toString(), "-p", "broken");
            assertTrue(run.exitCode() != 0, run.toString());
            assertTrue(run.out().contains("--no-such-flag"), "lame's complaint is in the log:\n" + run.out());
            assertTrue(run.err().matches("(?s).*build b-\\S+ failed \\(exit \\d+\\).*"), run.err());
            assertEquals(BuildState.BUILD_STATE_FAILED, lastBuild(fleet).getState());
        }
    }
}
