package dev.kiln.controller.local;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.snapshot.LocalSnapshotFormat;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/** The local fleet's records (instance, volume, ended-instance files): Java properties in UTF-8. */
final class RecordFiles {

    private RecordFiles() {
    }

    /** Reads a record; one that cannot be read fails the command, naming the file. */
    static Properties load(Path file) {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot read " + file + ": " + e.getMessage(), e);
        }
        return p;
    }

    /** Writes a record whole or not at all (a temporary file, then an atomic rename). */
    static void store(Properties p, Path file) throws IOException {
        LocalSnapshotFormat.store(p, file, "kiln local provider");
    }
}
