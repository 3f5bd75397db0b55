package dev.kiln.agent.logs;

/** Which stream a piece of a log came from. */
public enum OutputStream {
    STDOUT((byte) 1),
    STDERR((byte) 2),
    /** The agent's own log. */
    AGENT((byte) 3);

    private final byte code;

    OutputStream(byte code) {
        this.code = code;
    }

    byte code() {
        return code;
    }

    static OutputStream of(byte code) {
        for (OutputStream s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown stream code " + code);
    }
}
