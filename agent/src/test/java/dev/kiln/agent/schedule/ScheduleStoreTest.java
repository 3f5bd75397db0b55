package dev.kiln.agent.schedule;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The schedules file: what is saved is read back exactly, and only root can read it. */
class ScheduleStoreTest {

    @TempDir
    Path state;

    @Test
    void schedulesAndTheirRunsAreReadBackExactlyFromARootOnlyFile() throws Exception {
        Instant t = Instant.parse("2026-12-07T03:00:00.123456789Z");
        List<ScheduleState> saved = List.of(
                new ScheduleState(new ScheduleSpec("data", Duration.ofHours(24), "03:00", 7,
                        "sqlite3 /mnt/data/app.db 'PRAGMA wal_checkpoint(TRUNCATE)'", " echo done\n"), t, t.plusSeconds(60),
                        t, true, "snap-0abc completed", "snap-0abc", 0),
                new ScheduleState(new ScheduleSpec("logs", Duration.ofMillis(1500), "", 0, "bell\u0007 é", "a: b # c"), t,
                        t.plusSeconds(2), null, false, "", "", 3));
        ScheduleStore store = new ScheduleStore(state);
        store.save(new ScheduleStore.Contents(saved, "key"));

        ScheduleStore.Contents read = new ScheduleStore(state).load();

        assertEquals(saved, read.schedules());
        assertEquals("key", read.settingsKey());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(store.file())));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(store.file().getParent())));
    }
}
