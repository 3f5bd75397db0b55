package dev.kiln.e2e;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The small always-on server's nightly snapshot, sped up, on the local provider with loop
 * devices: a real SQLite writer commits transactions continuously into the data volume while the
 * agent snapshots it every 2 seconds keeping 3; the newest snapshot, restored into a new
 * instance, is an intact database holding every row committed before the snapshot.
 */
class ScheduledSnapshotsTest {

    /** The writer: one row per transaction, each commit logged (id, time) outside the volume after it returns. */
    static final String WRITER = String.join("\n",
            "import sqlite3, sys, time, os",
            "db, log, stop = sys.argv[1], sys.argv[2], sys.argv[3]",
            "c = sqlite3.connect(db)",
            "c.execute('PRAGMA journal_mode=WAL')",
            "c.execute('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT, at INTEGER)')",
            "c.commit()",
            "with open(log, 'a') as out:",
            "    while not os.path.exists(stop):",
            "        cur = c.execute('INSERT INTO notes (body, at) VALUES (?, ?)', ('x' * 200, time.time_ns()))",
            "        c.commit()",
            "        out.write('%d %d\\n' % (cur.lastrowid, time.time_ns()))",
            "        out.flush()",
            "        time.sleep(0.005)",
            "");

    @TempDir
    Path dir;

    Kiln kiln;
    Process writer;

    @BeforeEach
    void setUp() throws Exception {
        Prerequisites.requireRoot("loop devices and mounts");
        Prerequisites.requireCommand("python3", "apt-get install python3");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // the build user walks in
        kiln = new Kiln(dir.resolve("home"));
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() throws Exception {
        if (writer != null && writer.isAlive()) {
            writer.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        Matcher m = Pattern.compile("\"id\": \"(local-[0-9a-f]+)\"").matcher(kiln.run("ls", "-o", "json").out());
        while (m.find()) {
            kiln.run("terminate", m.group(1), "--force");
        }
    }

    String launch(String... args) {
        Kiln.Run run = kiln.run(Stream.concat(Stream.of("launch"), Stream.of(args)).toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }

    static JsonObject schedule(Kiln kiln, String id) {
        Kiln.Run r = kiln.run("schedule", id, "-o", "json");
        assertEquals(0, r.exitCode(), r.toString());
        JsonArray all = JsonParser.parseString(r.out()).getAsJsonObject().getAsJsonArray("schedules");
        return all.isEmpty() ? null : all.get(0).getAsJsonObject();
    }

    static Properties props(Path snapshot) throws Exception {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(snapshot.resolve("snapshot.properties"), StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return p;
    }

    static String python(String code, String... args) throws Exception {
        List<String> argv = new ArrayList<>(List.of("python3", "-c", code));
        argv.addAll(List.of(args));
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out.strip();
    }

    @Test
    void aLiveSqliteDatabaseSnapshottedOnAScheduleRestoresIntactWithItsCommittedRows() throws Exception {
        String server = launch("--volume", "data:1", "--ttl", "30m");
        Path fleet = kiln.stateDir().resolve("fleet");
        Path data = fleet.resolve("instances").resolve(server).resolve("mnt/data");
        Path log = dir.resolve("commits.log");
        Path stop = dir.resolve("stop");
        writer = new ProcessBuilder("python3", "-c", WRITER, data.resolve("notes.db").toString(), log.toString(), stop.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("writer.out").toFile()).start();
        // A snapshot the test makes by hand: Kiln lists it but never prunes it.
        Path foreign = Files.createDirectories(fleet.resolve("snapshots/snap-local-f00dface"));
        Files.writeString(foreign.resolve("snapshot.properties"), "volume-role=data\ncollection=default\nstarted="
                + Instant.now().minus(Duration.ofHours(1)) + "\n");

        // A schedule whose pre command fails: no snapshot, a problem in status, a mark in ls.
        Kiln.Run failing = kiln.run("schedule", server, "data", "--every", "1s", "--pre", "echo flush refused >&2; exit 3");
        assertEquals(0, failing.exitCode(), failing.toString());
        JsonObject refused = schedule(kiln, server);
        Instant failGiveUp = Instant.now().plus(Duration.ofMinutes(1));
        while (refused.get("failures").getAsInt() == 0 && Instant.now().isBefore(failGiveUp)) {
            Thread.sleep(200);
            refused = schedule(kiln, server);
        }
        assertTrue(refused.get("last_result").getAsString().contains("the pre command exited with status 3: flush refused"),
                refused.toString());
        Kiln.Run problem = kiln.run("status", "--agent", server);
        assertTrue(problem.out().matches("(?s).*\\nproblem\\s+snapshot schedule of data is failing \\(\\d+ failed runs? in a row\\):"
                + " the pre command exited with status 3: flush refused; no snapshot was taken; next try at .*"), problem.out());
        Kiln.Run marked = kiln.run("ls");
        assertTrue(marked.out().matches("(?s).*" + server + "\\s+worker\\s+-\\s+running\\s+ready, snapshots failing \\(data\\).*"),
                marked.out());
        assertEquals(0, kiln.run("schedule", server, "data", "--off").exitCode());
        awaitNoRun(server);
        try (Stream<Path> none = Files.list(fleet.resolve("snapshots"))) {
            assertEquals(List.of(foreign), none.filter(p -> p.getFileName().toString().startsWith("snap-")).toList());
        }

        Kiln.Run set = kiln.run("schedule", server, "data", "--every", "2s", "--keep", "3");
        assertEquals(0, set.exitCode(), set.toString());
        assertTrue(set.out().matches("(?s)ROLE\\s+EVERY\\s+AT\\s+KEEP.*\\ndata\\s+2s\\s+-\\s+3\\s.*"), set.out());

        // Several runs: watch the last snapshot change (a generous bound against a hang, not a speed test).
        Set<String> seen = new LinkedHashSet<>();
        long rssKb = 0;
        Path pid = fleet.resolve("instances").resolve(server).resolve("agent.pid");
        Instant giveUp = Instant.now().plus(Duration.ofMinutes(3));
        while (seen.size() < 6 && Instant.now().isBefore(giveUp)) {
            JsonObject s = schedule(kiln, server);
            assertEquals(0, s.get("failures").getAsInt(), s.toString());
            if (!s.get("last_snapshot_id").getAsString().isEmpty()) {
                seen.add(s.get("last_snapshot_id").getAsString());
            }
            rssKb = Math.max(rssKb, rss(Files.readString(pid).strip()));
            Thread.sleep(250);
        }
        assertTrue(seen.size() >= 6, "six runs: " + seen);
        Kiln.Run status = kiln.run("status", "--agent", server);
        assertTrue(status.out().matches("(?s).*\\nschedule\\s+data every 2s, keeping 3; last: ok, last snapshot snap-local-.*"),
                status.out());
        System.out.println("kiln-agent VmRSS peak while snapshotting a live SQLite database every 2s: " + rssKb + " kB");

        Kiln.Run off = kiln.run("schedule", server, "data", "--off");
        assertEquals(0, off.exitCode(), off.toString());
        awaitNoRun(server);

        List<Path> kilns = new ArrayList<>();
        try (Stream<Path> all = Files.list(fleet.resolve("snapshots"))) {
            for (Path p : all.filter(p -> p.getFileName().toString().startsWith("snap-local-")).toList()) {
                if ("true".equals(props(p).getProperty("managed"))) {
                    kilns.add(p);
                }
            }
        }
        assertEquals(3, kilns.size(), "exactly --keep 3 of Kiln's: " + kilns);
        assertTrue(Files.exists(foreign.resolve("snapshot.properties")), "the foreign snapshot is left alone");
        Path newest = kilns.stream().max((a, b) -> {
            try {
                return Instant.parse(props(a).getProperty("started")).compareTo(Instant.parse(props(b).getProperty("started")));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).orElseThrow();
        Instant pointInTime = Instant.parse(props(newest).getProperty("started"));

        Files.writeString(stop, "");
        assertTrue(writer.waitFor(60, TimeUnit.SECONDS), "the writer stopped");
        // The last row whose commit had returned before the snapshot's point in time.
        long committed = 0;
        for (String line : Files.readAllLines(log)) {
            String[] f = line.split(" ");
            if (f.length == 2) {
                long at = Long.parseLong(f[1]);
                if (at < pointInTime.getEpochSecond() * 1_000_000_000L + pointInTime.getNano()) {
                    committed = Math.max(committed, Long.parseLong(f[0]));
                }
            }
        }
        assertTrue(committed > 0, "rows were committed before the snapshot");

        String restored = launch("--volume", "data:" + newest.getFileName());
        Path db = fleet.resolve("instances").resolve(restored).resolve("mnt/data/notes.db");
        String check = python(String.join("\n",
                "import sqlite3, sys",
                "c = sqlite3.connect(sys.argv[1])",
                "print(c.execute('PRAGMA integrity_check').fetchone()[0])",
                "print(c.execute('SELECT count(*) FROM notes WHERE id = ?', (int(sys.argv[2]),)).fetchone()[0])"),
                db.toString(), Long.toString(committed));
        assertEquals("ok\n1", check, "integrity_check, and the last row committed before the snapshot");
    }

    /** Waits until the agent is not in the middle of a scheduled snapshot (a run may finish after --off). */
    void awaitNoRun(String id) throws Exception {
        Instant giveUp = Instant.now().plus(Duration.ofMinutes(1));
        while (Instant.now().isBefore(giveUp)) {
            Kiln.Run st = kiln.run("status", "--agent", id, "-o", "json");
            if (!st.out().contains("scheduled snapshot of")) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("a scheduled snapshot is still running a minute after --off");
    }

    static long rss(String pid) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc", pid, "status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        return 0;
    }
}
