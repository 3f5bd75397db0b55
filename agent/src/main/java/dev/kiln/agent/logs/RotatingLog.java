package dev.kiln.agent.logs;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A log that never ends by itself and is bounded on disk (a service's output): byte offsets run on
 * for the log's whole life, as in any {@link LogFile}, but the bytes live in two segment files,
 * {@code log.<first offset>} (each a {@link LogFile} with its stream index), and when the newer
 * one with its index reaches half the cap a new segment starts and the oldest is deleted. So the
 * files on disk never exceed the cap (an append larger than half of it aside); a reader whose offset is older gets a
 * {@link LogTruncatedException} naming the first offset still kept. It survives agent restarts:
 * opening it appends to the newest segment.
 */
public final class RotatingLog implements LogSource, AutoCloseable {

    private static final Pattern SEGMENT = Pattern.compile("log\\.(\\d+)");

    private final Path dir;
    private final long cap;
    private final TreeMap<Long, Path> segments = new TreeMap<>(); // first offset -> file, oldest first
    private final List<Runnable> endWaiters = new ArrayList<>();
    private LogFile current;
    private long currentBase;
    private boolean ended;

    private RotatingLog(Path dir, long cap) throws IOException {
        if (cap < 2) {
            throw new IllegalArgumentException("a rotating log needs a cap of at least 2 bytes, not " + cap);
        }
        this.dir = dir;
        this.cap = cap;
        Files.createDirectories(dir);
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path f : files) {
                Matcher m = SEGMENT.matcher(f.getFileName().toString());
                if (m.matches()) {
                    segments.put(Long.parseLong(m.group(1)), f);
                }
            }
        }
        currentBase = segments.isEmpty() ? 0 : segments.lastKey();
        current = LogFile.open(segmentFile(currentBase));
        segments.put(currentBase, current.path());
    }

    /**
     * Opens (creating, or appending to) the rotating log in {@code dir}.
     *
     * @param cap the most bytes kept on disk, stream indexes included
     */
    public static RotatingLog open(Path dir, long cap) throws IOException {
        return new RotatingLog(dir, cap);
    }

    /** The most bytes kept on disk. */
    public long cap() {
        return cap;
    }

    /** Appends bytes from one stream, starting a new segment first when the current one is full. */
    public synchronized void append(LogChannel stream, byte[] bytes, int off, int len) throws IOException {
        if (ended) {
            throw new IOException("log " + dir + " has ended");
        }
        if (len == 0) {
            return;
        }
        // The stream index counts: output that switches streams often grows it as fast as the bytes.
        if (current.diskSize() > 0 && current.diskSizeAfter(stream, len) > cap / 2) {
            rotate();
        }
        current.append(stream, bytes, off, len);
    }

    /**
     * Starts the next segment and deletes those beyond the newest two. Closing the old segment wakes
     * its followers, who then find the new one.
     */
    private void rotate() throws IOException {
        LogFile old = current;
        long next = currentBase + old.size();
        current = LogFile.open(segmentFile(next));
        currentBase = next;
        segments.put(next, current.path());
        old.close();
        while (segments.size() > 2) {
            Map.Entry<Long, Path> oldest = segments.pollFirstEntry();
            // A reader that has the file open reads on; one that comes later finds it gone.
            Files.deleteIfExists(LogFile.indexOf(oldest.getValue()));
            Files.deleteIfExists(oldest.getValue());
        }
    }

    private Path segmentFile(long base) {
        return dir.resolve("log." + base);
    }

    /** The lowest offset still kept on disk. */
    public synchronized long firstOffset() {
        return segments.firstKey();
    }

    /** The current segment (readers use {@link #cursor()}, which spans the segments). */
    @Override
    public synchronized Path file() {
        return current.path();
    }

    @Override
    public LogChannel defaultStream() {
        return LogChannel.STDOUT;
    }

    /** Bytes written over the log's whole life (the offset of the next byte). */
    @Override
    public synchronized long size() {
        return currentBase + current.size();
    }

    @Override
    public synchronized boolean ended() {
        return ended;
    }

    @Override
    public void whenBeyond(long knownSize, Runnable r, BooleanSupplier wanted) {
        LogFile segment;
        long base;
        synchronized (this) {
            segment = current;
            base = currentBase;
        }
        // A rotation between here and the registration closes this segment, which runs r at once.
        segment.whenBeyond(Math.max(-1, knownSize - base), r);
    }

    @Override
    public Runnable whenEnded(Runnable r) {
        synchronized (this) {
            if (!ended) {
                endWaiters.add(r);
                return () -> {
                    synchronized (this) {
                        endWaiters.remove(r);
                    }
                };
            }
        }
        r.run();
        return () -> { };
    }

    /** Ends the log for good (the service will not run again): followers get the end. */
    public void end() throws IOException {
        List<Runnable> toRun;
        LogFile segment;
        synchronized (this) {
            if (ended) {
                return;
            }
            ended = true;
            segment = current;
            toRun = new ArrayList<>(endWaiters);
            endWaiters.clear();
        }
        segment.close();
        toRun.forEach(Runnable::run);
    }

    /** Syncs and closes the current segment without ending the log (the agent stops). */
    @Override
    public void close() throws IOException {
        LogFile segment;
        synchronized (this) {
            segment = current;
        }
        segment.close();
    }

    @Override
    public LogCursor cursor() {
        return new Cursor();
    }

    /** Reads across segments, one segment's {@link LogReader} open at a time. */
    private final class Cursor implements LogCursor {
        private LogReader reader;
        private long readerBase = -1;
        private boolean closed;

        @Override
        public synchronized List<Segment> read(long offset, int max) throws IOException {
            return read(offset, max, false);
        }

        @Override
        public synchronized List<Segment> readReusing(long offset, int max) throws IOException {
            return read(offset, max, true);
        }

        private List<Segment> read(long offset, int max, boolean reuse) throws IOException {
            if (closed) {
                throw new IOException("log reader of " + dir + " is closed");
            }
            long base;
            long end;
            Path file;
            long first;
            synchronized (RotatingLog.this) {
                first = segments.firstKey();
                Map.Entry<Long, Path> at = segments.floorEntry(offset);
                if (at == null) {
                    throw new LogTruncatedException(offset, first, cap);
                }
                base = at.getKey();
                file = at.getValue();
                Long next = segments.higherKey(base);
                end = next == null ? Long.MAX_VALUE : next;
            }
            if (base != readerBase) {
                if (reader != null) {
                    reader.close();
                }
                reader = new LogReader(file, LogChannel.STDOUT);
                readerBase = base;
            }
            List<Segment> local;
            try {
                int want = (int) Math.min(max, end - offset);
                local = reuse ? reader.readReusing(offset - base, want) : reader.read(offset - base, want);
            } catch (NoSuchFileException e) {
                // Rotated away between the look-up and the open.
                reader.close();
                reader = null;
                readerBase = -1;
                throw new LogTruncatedException(offset, firstOffset(), cap);
            }
            if (local.isEmpty() && end != Long.MAX_VALUE) {
                // A segment shorter than the next one's start says (its end was lost in a crash):
                // the bytes in between never reached the disk; go on from the next segment.
                return read(end, max, reuse);
            }
            List<Segment> out = new ArrayList<>(local.size());
            for (Segment s : local) {
                out.add(new Segment(s.offset() + base, s.data(), s.stream()));
            }
            return out;
        }

        @Override
        public synchronized void close() throws IOException {
            closed = true;
            if (reader != null) {
                reader.close();
            }
        }
    }
}
