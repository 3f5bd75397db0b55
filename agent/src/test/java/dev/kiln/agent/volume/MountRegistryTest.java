package dev.kiln.agent.volume;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The registry of Kiln's mounts on disk: what an agent restart reads to know which mounts are its
 * own, so a change must survive a power cut whole (old list or new, never an empty file).
 */
class MountRegistryTest {

    @TempDir
    Path state;

    @Test
    void aChangeIsReadBackByTheNextAgent() throws Exception {
        MountRegistry registry = new MountRegistry(state);
        KilnMount data = new KilnMount(Path.of("/mnt/data"), "/dev/loop7", "loop7", "", "ext4", null, null);
        KilnMount work = new KilnMount(Path.of("/srv/work"), "overlay", "", "", "overlay", Path.of("/mnt/sources"),
                Path.of("/mnt/builds/work"));
        registry.put(data);
        registry.put(work);
        registry.remove(Path.of("/mnt/data"));
        assertEquals(List.of(work), new MountRegistry(state).all());
    }

    /**
     * Watched with strace on the calling thread: the new contents are fsync'ed before the rename
     * makes them the registry, and the directory is fsync'ed after it, so the rename is on disk too.
     */
    @Test
    void theNewListIsSyncedBeforeTheRenameAndTheDirectoryAfterIt() throws Exception {
        Path strace = Prerequisites.requireCommand("strace", "apt-get install strace");
        MountRegistry registry = new MountRegistry(state);
        Path trace = state.resolve("trace");
        Path said = state.resolve("strace.err");
        // This thread only ("PID/task/TID"): the JVM's other threads write files of their own.
        String tid = Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString();
        Process p = new ProcessBuilder(strace.toString(), "-p", tid, "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                "-o", trace.toString()).redirectErrorStream(true).redirectOutput(said.toFile()).start();
        try {
            long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!Files.readString(said).contains("attached") && p.isAlive() && System.nanoTime() < end) {
                Thread.sleep(20);
            }
            String attach = Files.readString(said);
            Prerequisites.require("ptrace (strace -p) on this machine", attach.contains("attached"),
                    "allow ptrace (kernel.yama.ptrace_scope=0, or CAP_SYS_PTRACE in a container); strace said: " + attach.strip());
            registry.put(new KilnMount(Path.of("/mnt/data"), "/dev/loop7", "loop7", "", "ext4", null, null));
        } finally {
            p.destroy(); // SIGTERM: strace detaches and writes out what it saw
            assertTrue(p.waitFor(20, TimeUnit.SECONDS), "strace ends");
        }
        Path dir = state.resolve("volumes");
        List<String> calls = Files.readAllLines(trace, StandardCharsets.UTF_8).stream()
                .filter(l -> l.contains(dir.toString())).toList();
        int rename = indexOf(calls, "rename", dir.resolve("mounts.tmp") + "\", ");
        assertTrue(rename >= 0, "the new list is renamed into place: " + calls);
        assertTrue(indexOf(calls.subList(0, rename), "fsync(", "<" + dir.resolve("mounts.tmp") + ">") >= 0,
                "the new list is fsync'ed before the rename: " + calls);
        assertTrue(indexOf(calls.subList(rename + 1, calls.size()), "fsync(", "<" + dir + ">") >= 0,
                "the directory is fsync'ed after the rename: " + calls);
        assertEquals(1, new MountRegistry(state).all().size());
    }

    private static int indexOf(List<String> calls, String syscall, String argument) {
        for (int i = 0; i < calls.size(); i++) {
            if (calls.get(i).startsWith(syscall) && calls.get(i).contains(argument)) {
                return i;
            }
        }
        return -1;
    }
}
