package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.BooleanSupplier;

/**
 * The log of a build that has ended: a file that will not grow again (possibly missing, when the
 * build never produced a byte).
 *
 * @param file         the log file
 * @param recordedSize the size the build's record holds, used when the file cannot be read
 */
public record FinishedLog(Path file, long recordedSize) implements LogSource {

    @Override
    public LogChannel defaultStream() {
        return LogChannel.STDOUT;
    }

    @Override
    public long size() {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return recordedSize;
        }
    }

    @Override
    public boolean ended() {
        return true;
    }

    @Override
    public void whenBeyond(long knownSize, Runnable then, BooleanSupplier wanted) {
        then.run();
    }
}
