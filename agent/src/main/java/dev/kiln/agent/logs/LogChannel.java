package dev.kiln.agent.logs;

/** Where a piece of a log came from: the program's stdout or stderr, or the agent's own log. */
public enum LogChannel {
    STDOUT((byte) 1),
    STDERR((byte) 2),
    /** The agent's own log. */
    AGENT((byte) 3);

    private final byte code;

    LogChannel(byte code) {
        this.code = code;
    }

    byte code() {
        return code;
    }

    static LogChannel of(byte code) {
        for (LogChannel s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown stream code " + code);
    }
}
