package dev.kiln.startup;

/**
 * Netty system properties both Kiln programs set before Netty's classes initialise. A value given
 * on the command line ({@code -D...}) wins.
 */
public final class NettyProperties {

    /** Netty's switch for its JFR events. */
    public static final String JFR = "io.netty.jfr.enabled";

    private NettyProperties() {
    }

    /**
     * Turns Netty's JFR events off. Its pooled allocator, on its first chunk, registers an event
     * class, which initialises JFR's event metadata (about 100 classes and their annotation
     * proxies) even though nothing records, on the way to the first call (docs/performance.md).
     * Kiln never reads those events; a profile that wants them can pass
     * {@code -Dio.netty.jfr.enabled=true}.
     */
    public static void applyDefaults() {
        if (System.getProperty(JFR) == null) {
            System.setProperty(JFR, "false");
        }
    }
}
