package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A log written by someone else (the agent's own log, written by logback), followed by checking
 * its size a few times a second. It ends when the agent powers off.
 */
public final class PolledFileSource implements LogSource {

    private final Path file;
    private final LogChannel stream;
    private final ScheduledExecutorService timer;
    private final java.util.function.BooleanSupplier ended;

    /**
     * @param ended true once nothing more will be written (the agent is powering off)
     */
    public PolledFileSource(Path file, LogChannel stream, ScheduledExecutorService timer,
                            java.util.function.BooleanSupplier ended) {
        this.file = file;
        this.stream = stream;
        this.timer = timer;
        this.ended = ended;
    }

    @Override
    public Path file() {
        return file;
    }

    @Override
    public LogChannel defaultStream() {
        return stream;
    }

    @Override
    public long size() {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    @Override
    public boolean ended() {
        return ended.getAsBoolean();
    }

    @Override
    public void whenBeyond(long knownSize, Runnable r, java.util.function.BooleanSupplier wanted) {
        if (!wanted.getAsBoolean()) {
            return;
        }
        if (size() > knownSize || ended()) {
            r.run();
            return;
        }
        timer.schedule(() -> whenBeyond(knownSize, r, wanted), 200, TimeUnit.MILLISECONDS);
    }
}
