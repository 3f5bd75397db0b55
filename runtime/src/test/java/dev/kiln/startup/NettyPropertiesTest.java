package dev.kiln.startup;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Netty's pooled allocator, on its first chunk, initialises JFR's event metadata unless its JFR
 * events are off; {@link NettyProperties#applyDefaults()} turns them off (a tenth of a second of
 * every kiln command), and a -D given on the command line still wins. Each case runs in a fresh
 * JVM, since Netty reads the property once, when its classes initialise.
 */
class NettyPropertiesTest {

    /** Run in the child JVM: applies the defaults unless told not to, then allocates a pooled buffer. */
    public static void main(String[] args) {
        if (!args[0].equals("bare")) {
            NettyProperties.applyDefaults();
        }
        ByteBuf buf = PooledByteBufAllocator.DEFAULT.heapBuffer(64 * 1024);
        buf.release();
        System.out.println("property=" + System.getProperty(NettyProperties.JFR));
    }

    private static List<String> child(Path log, String mode, String... jvmOptions) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xshare:off", "-Xlog:class+load=info:file=" + log));
        cmd.addAll(List.of(jvmOptions));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), NettyPropertiesTest.class.getName(), mode));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child JVM ends");
        assertEquals(0, p.exitValue(), out);
        return List.of(out.strip(), Files.readString(log));
    }

    private static boolean jfrInitialised(String classLoadLog) {
        return classLoadLog.contains("jdk.jfr.internal.MetadataRepository ");
    }

    @Test
    void defaultsKeepNettysAllocatorFromInitialisingJfr(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        List<String> bare = child(dir.resolve("bare.log"), "bare");
        // The reason for the setting: without it the first pooled chunk initialises JFR. If a Netty
        // upgrade stops doing that, this fails, and the setting can go.
        assertTrue(jfrInitialised(bare.get(1)), "without the setting, Netty's first pooled chunk initialises JFR");

        List<String> kiln = child(dir.resolve("kiln.log"), "kiln");
        assertEquals("property=false", kiln.get(0));
        assertFalse(jfrInitialised(kiln.get(1)), "with Kiln's defaults, JFR stays uninitialised");

        List<String> user = child(dir.resolve("user.log"), "kiln", "-Dio.netty.jfr.enabled=true");
        assertEquals("property=true", user.get(0), "a -D on the command line wins");
    }
}
