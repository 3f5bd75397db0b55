package dev.kiln.e2e;

import dev.kiln.testkit.Prerequisites;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The "vibes" example (examples/vibes): a generated collection of WAVE masters with tag files and
 * covers, built by the real tup into every profile (FLAC, MP3, Ogg Vorbis, Opus) with the real
 * encoders, and read back with the real tag readers. This is the project's main job in miniature:
 * what the agent runs for the music collector.
 *
 * <p>One full collection is generated and built once for the tests that only look at it; tests
 * that change a collection build their own small one.
 */
class VibesExampleTest {

    /**
     * The tags the rules look up in tag files (TRACKNUMBER comes from the file name; TRACKTOTAL,
     * unless a tag file sets it, from the number of masters in the track's folder).
     */
    private static final List<String> TAG_FILE_KEYS = List.of("ALBUM", "ALBUMARTIST", "ARTIST",
            "COMMENT", "COMPOSER", "DATE", "DISCNUMBER", "DISCTOTAL", "GENRE", "TITLE", "TRACKTOTAL");

    /** Output extension of each encoder a profile may name. */
    private static final Map<String, String> EXTENSIONS =
            Map.of("flac", "flac", "lame", "mp3", "oggenc", "ogg", "opusenc", "opus");

    /**
     * A command tup ran, as it prints it when its output is not a terminal, e.g.
     * {@code " ~45% 39) [0.049s] build-mp3/artist/album/disc1: lame 02-octave.wav"}; a failed one
     * starts with '*' and has no time. Parse-phase lines have no ": " part.
     */
    private static final Pattern TUP_COMMAND = Pattern.compile(
            "^\\*?\\s*~?\\s*\\d+%\\s+\\d+\\)\\s+(?:\\[[0-9.]+s\\]\\s+)?(build-[^:\\s]+): (.+)$");

    private static final long TUP_TIMEOUT_SECONDS = 120;

    private static Path vibes;

    @TempDir
    static Path shared;

    /** The full collection, generated and built once. */
    private static Path collection;

    /** Profile name (build-NAME) to the encoder its tup.config names. */
    private static Map<String, String> profiles;

    @BeforeAll
    static void generateAndBuildTheFullCollection() throws IOException {
        requireTools();
        vibes = findExample();
        profiles = readProfiles(vibes.resolve("profiles"));
        assertEquals(Set.of("flac", "mp3", "vorbis", "opus"), profiles.keySet(), "profiles shipped");

        collection = shared.resolve("music");
        generate(collection, false);
        Result init = run(collection, "tup", "init");
        assertEquals(0, init.exitCode(), init.output());
        Result build = tup(collection);
        assertEquals(0, build.exitCode(), "first build failed:\n" + build.output());
    }

    @Test
    void aFullBuildProducesEveryTrackInEveryProfileAndNothingElse() throws IOException {
        List<Path> tracks = masters(collection);
        assertEquals(14, tracks.size(), "tracks in the full collection");
        for (Map.Entry<String, String> profile : profiles.entrySet()) {
            Path out = collection.resolve("build-" + profile.getKey());
            String ext = EXTENSIONS.get(profile.getValue());
            Set<String> expected = new TreeSet<>();
            expected.add("tup.config");
            for (Path wav : tracks) {
                expected.add(withExtension(collection.relativize(wav), ext));
            }
            for (Path album : albums(collection)) {
                expected.add(collection.relativize(album.resolve(album.getFileName() + ".m3u")).toString());
            }
            assertEquals(expected, filesUnder(out), "files in " + out.getFileName());
            for (String file : expected) {
                assertTrue(Files.size(out.resolve(file)) > 0, file + " is empty in " + out.getFileName());
            }
            // No folder of the rules' own (such as an empty _vibes/) is mirrored into the outputs.
            try (Stream<Path> dirs = Files.walk(out)) {
                for (Path dir : dirs.filter(Files::isDirectory).filter(d -> !out.relativize(d).startsWith(".tup")).toList()) {
                    try (Stream<Path> entries = Files.list(dir)) {
                        assertTrue(entries.findAny().isPresent(), "empty folder in the outputs: " + dir);
                    }
                }
            }
        }
    }

    @Test
    void eachAlbumHasAPlaylistPerProfileListingItsTracksInDiscAndTrackOrder() throws IOException {
        for (Map.Entry<String, String> profile : profiles.entrySet()) {
            String ext = EXTENSIONS.get(profile.getValue());
            for (Path album : albums(collection)) {
                Path relative = collection.relativize(album);
                Path m3u = collection.resolve("build-" + profile.getKey()).resolve(relative)
                        .resolve(album.getFileName() + ".m3u");
                List<String> expected = new ArrayList<>();
                expected.add("#EXTM3U");
                for (Path wav : albumTracksInOrder(album)) {
                    expected.add(withExtension(album.relativize(wav), ext));
                }
                assertEquals(expected, Files.readAllLines(m3u), m3u.toString());
            }
        }
        // The two-disc album, spelled out: disc 1 before disc 2, tracks by number.
        assertEquals(List.of("#EXTM3U", "disc1/01-fundamental.opus", "disc1/02-octave.opus",
                        "disc1/03-perfect-fifth.opus", "disc2/01-beating.opus", "disc2/02-overtones.opus"),
                Files.readAllLines(collection.resolve("build-opus/the-sine-waves/harmonics/harmonics.m3u")));
    }

    @Test
    void tagsReadBackFromEveryFormatMatchTheTagFileHierarchy() throws IOException {
        for (Path wav : masters(collection)) {
            Map<String, String> expected = expectedTags(collection, wav);
            Path relative = collection.relativize(wav);
            for (Map.Entry<String, String> profile : profiles.entrySet()) {
                String encoder = profile.getValue();
                Path encoded = collection.resolve("build-" + profile.getKey())
                        .resolve(withExtension(relative, EXTENSIONS.get(encoder)));
                Map<String, String> read = readTags(encoder, encoded);
                Map<String, String> want = encoder.equals("lame") ? asId3(expected) : expected;
                assertEquals(want, withoutEncoderNotes(read), encoded.toString());
            }
        }
        // Spot checks that do not depend on this test's own reading of the hierarchy.
        Map<String, String> beating = expectedTags(collection,
                collection.resolve("the-sine-waves/harmonics/disc2/01-beating.wav"));
        assertEquals(Map.of("ALBUM", "Harmonics", "ARTIST", "The Sine Waves", "DATE", "2021",
                "DISCNUMBER", "2", "DISCTOTAL", "2", "GENRE", "Electronic", "TITLE", "Beating",
                "TRACKNUMBER", "1", "TRACKTOTAL", "2"), beating);
        assertEquals(beating, readTags("flac",
                collection.resolve("build-flac/the-sine-waves/harmonics/disc2/01-beating.flac")));
        Map<String, String> coneSix = readTags("oggenc",
                collection.resolve("build-vorbis/kiln-quartet/glaze/02-cone-six.ogg"));
        assertEquals("Kiln Quartet feat. Ada Ember", coneSix.get("ARTIST"), "a track's own tag file wins");
        assertEquals("Kiln Quartet", coneSix.get("ALBUMARTIST"), "an album with a featured artist names its own");
        assertEquals("2", coneSix.get("TRACKNUMBER"), "track number from the file name");
        assertEquals("3", coneSix.get("TRACKTOTAL"), "tracks on the album");
        Map<String, String> mp3 = readTags("lame",
                collection.resolve("build-mp3/the-sine-waves/harmonics/disc1/03-perfect-fifth.mp3"));
        assertEquals("1/2", mp3.get("DISCNUMBER"), "ID3 part of a set");
        assertEquals("3/3", mp3.get("TRACKNUMBER"), "ID3 track of the disc's tracks");
        assertEquals("Kiln Quartet", readTags("lame", collection.resolve("build-mp3/kiln-quartet/glaze/01-bisque.mp3"))
                .get("ALBUMARTIST"), "ID3 TPE2");
    }

    @Test
    void theAlbumCoverIsEmbeddedAsTheFrontCoverInEveryFormat() throws IOException {
        for (Path wav : masters(collection)) {
            Path relative = collection.relativize(wav);
            Path cover = albumOf(wav).resolve("cover.png");
            long size = Files.size(cover);

            Path flac = collection.resolve("build-flac").resolve(withExtension(relative, "flac"));
            String pictures = run(collection, "metaflac", "--list", "--block-type=PICTURE", flac.toString())
                    .orThrow();
            assertTrue(pictures.contains("type: 3 (Cover (front))"), flac + ":\n" + pictures);
            assertTrue(pictures.contains("MIME type: image/png"), pictures);
            assertTrue(pictures.contains("data length: " + size), pictures);
            assertTrue(pictures.contains("width: 129") && pictures.contains("height: 129"), "a square cover:\n" + pictures);

            Path mp3 = collection.resolve("build-mp3").resolve(withExtension(relative, "mp3"));
            String frames = run(collection, "id3v2", "-l", mp3.toString()).orThrow();
            // id3v2 prints an APIC frame as "(DESCRIPTION)[, PICTURE TYPE]: MIME, SIZE bytes".
            assertTrue(frames.contains("APIC (Attached picture): ()[, 3]: image/png, " + size + " bytes"),
                    mp3 + ":\n" + frames);

            Path opus = collection.resolve("build-opus").resolve(withExtension(relative, "opus"));
            String info = run(collection, "opusinfo", opus.toString()).orThrow();
            assertTrue(info.contains("METADATA_BLOCK_PICTURE=3|image/png||129x129x"), opus + ":\n" + info);
            assertTrue(info.contains("<" + size + " bytes of image data>"), info);

            // Vorbis carries the picture as a base64 FLAC picture block in a comment.
            Path ogg = collection.resolve("build-vorbis").resolve(withExtension(relative, "ogg"));
            String comments = run(collection, "vorbiscomment", "-l", ogg.toString()).orThrow();
            String block = comments.lines().filter(l -> l.startsWith("METADATA_BLOCK_PICTURE="))
                    .map(l -> l.substring("METADATA_BLOCK_PICTURE=".length()))
                    .findFirst().orElseThrow(() -> new AssertionError("no picture in " + ogg));
            ByteBuffer picture = ByteBuffer.wrap(Base64.getDecoder().decode(block));
            assertEquals(3, picture.getInt(), "picture type: front cover");
            byte[] mime = new byte[picture.getInt()];
            picture.get(mime);
            assertEquals("image/png", new String(mime, StandardCharsets.US_ASCII));
            int descriptionLength = picture.getInt();
            picture.position(picture.position() + descriptionLength);
            assertEquals(129, picture.getInt(), "width");
            assertEquals(129, picture.getInt(), "height");
            picture.getInt(); // depth
            picture.getInt(); // colours
            byte[] data = new byte[picture.getInt()];
            picture.get(data);
            assertArrayEquals(Files.readAllBytes(cover), data, "embedded cover bytes");
        }
    }

    @Test
    void aSecondBuildOfAnUnchangedCollectionRunsNothing() throws IOException {
        Map<Path, FileTime> before = outputTimes(collection);
        Result again = tup(collection);
        assertEquals(0, again.exitCode(), again.output());
        assertTrue(again.output().contains("No commands to execute."), again.output());
        assertTrue(again.output().contains("No Tupfiles to parse."), again.output());
        assertEquals(List.of(), commandsRun(again), again.output());
        assertEquals(before, outputTimes(collection), "output files' modification times");
    }

    @Test
    void changingOneTracksTitleRebuildsExactlyThatTrackInEveryProfile() throws IOException, InterruptedException {
        Path music = smallBuiltCollection("retitle");
        Path title = music.resolve("the-sine-waves/harmonics/disc1/02-octave.TITLE");
        Map<Path, FileTime> before = outputTimes(music);

        rewriteInALaterSecond(title, "Octave (Reprise)\n");
        Result rebuild = tup(music);
        assertEquals(0, rebuild.exitCode(), rebuild.output());

        Set<String> expectedCommands = new TreeSet<>();
        Set<Path> expectedChanged = new TreeSet<>();
        for (Map.Entry<String, String> profile : profiles.entrySet()) {
            String dir = "build-" + profile.getKey() + "/the-sine-waves/harmonics/disc1";
            expectedCommands.add(dir + ": " + profile.getValue() + " 02-octave.wav");
            expectedChanged.add(music.resolve(dir).resolve("02-octave." + EXTENSIONS.get(profile.getValue())));
        }
        assertEquals(expectedCommands, new TreeSet<>(commandsRun(rebuild)), rebuild.output());

        Map<Path, FileTime> after = outputTimes(music);
        assertEquals(before.keySet(), after.keySet(), "the same output files");
        Set<Path> changed = new TreeSet<>();
        for (Map.Entry<Path, FileTime> entry : after.entrySet()) {
            if (!entry.getValue().equals(before.get(entry.getKey()))) {
                changed.add(entry.getKey());
            }
        }
        assertEquals(expectedChanged, changed, "outputs rewritten");

        for (Path encoded : expectedChanged) {
            String encoder = profiles.get(music.relativize(encoded).getName(0).toString().substring("build-".length()));
            assertEquals("Octave (Reprise)", readTags(encoder, encoded).get("TITLE"), encoded.toString());
        }
        assertEquals(List.of(), commandsRun(tup(music)), "and then nothing more to do");
    }

    @Test
    void aTagFileAddedNearerToATrackOverridesTheInheritedOneForThatTrackOnly() throws IOException {
        Path music = smallBuiltCollection("override");
        // glaze/GENRE says Jazz; a track-level file wins for that track alone.
        Files.writeString(music.resolve("kiln-quartet/glaze/01-bisque.GENRE"), "Free Jazz\n");
        Result rebuild = tup(music);
        assertEquals(0, rebuild.exitCode(), rebuild.output());
        assertEquals(4, commandsRun(rebuild).size(), "one command per profile:\n" + rebuild.output());
        assertTrue(commandsRun(rebuild).stream().allMatch(c -> c.endsWith(" 01-bisque.wav")), rebuild.output());
        assertEquals("Free Jazz", readTags("flac", music.resolve("build-flac/kiln-quartet/glaze/01-bisque.flac"))
                .get("GENRE"));
        assertEquals("Jazz", readTags("flac", music.resolve("build-flac/kiln-quartet/glaze/02-cone-six.flac"))
                .get("GENRE"));
    }

    @Test
    void aProfileWithInvalidEncoderFlagsFailsTheBuildWithTheEncodersMessage() throws IOException {
        Path music = shared.resolve("broken");
        generate(music, true);
        deleteStandardVariants(music);
        Path variant = Files.createDirectories(music.resolve("build-broken"));
        Files.writeString(variant.resolve("tup.config"), "CONFIG_ENCODER=lame\nCONFIG_LAME_FLAGS=--no-such-flag\n");
        assertEquals(0, run(music, "tup", "init").exitCode());

        Result build = tup(music);
        assertNotEquals(0, build.exitCode(), build.output());
        assertTrue(build.output().contains("lame: unrecognized option --no-such-flag"), build.output());
        assertTrue(build.output().contains("failed with return value"), build.output());
    }

    @Test
    void aProfileWithoutAnEncoderFailsBeforeRunningAnything() throws IOException {
        Path music = shared.resolve("no-encoder");
        generate(music, true);
        deleteStandardVariants(music);
        Path variant = Files.createDirectories(music.resolve("build-empty"));
        Files.writeString(variant.resolve("tup.config"), "CONFIG_FLAC_FLAGS=--best\n");
        assertEquals(0, run(music, "tup", "init").exitCode());

        Result build = tup(music);
        assertNotEquals(0, build.exitCode(), build.output());
        assertTrue(build.output().contains("CONFIG_ENCODER is not set"), build.output());
        assertEquals(List.of(), commandsRun(build), build.output());
    }

    @Test
    void theGeneratorIsDeterministic() throws IOException {
        Path one = shared.resolve("same-1");
        Path two = shared.resolve("same-2");
        generate(one, true);
        generate(two, true);
        Set<String> files = filesUnder(one);
        assertEquals(files, filesUnder(two));
        for (String file : files) {
            assertArrayEquals(Files.readAllBytes(one.resolve(file)), Files.readAllBytes(two.resolve(file)), file);
        }
        assertEquals(8, masters(one).size(), "tracks in the small collection");
    }

    // ---- the collection ----

    private static Path findExample() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("examples/vibes");
            if (Files.isRegularFile(candidate.resolve("generate"))) {
                return candidate;
            }
        }
        return fail("examples/vibes not found above " + Path.of("").toAbsolutePath());
    }

    private static void requireTools() {
        Prerequisites.requireCommand("bash", "apt-get install bash");
        Prerequisites.requireCommand("tup", "apt-get install tup fuse3");
        Prerequisites.requireCommand("fusermount3", "apt-get install fuse3");
        Prerequisites.require("FUSE (/dev/fuse), which tup runs its commands in",
                Files.exists(Path.of("/dev/fuse")),
                "modprobe fuse; in a container, pass the device (docker run --device /dev/fuse)");
        Prerequisites.requireCommand("sox", "apt-get install sox");
        Prerequisites.requireCommand("flac", "apt-get install flac");
        Prerequisites.requireCommand("metaflac", "apt-get install flac");
        Prerequisites.requireCommand("lame", "apt-get install lame");
        Prerequisites.requireCommand("eyeD3", "apt-get install eyed3");
        Prerequisites.requireCommand("id3v2", "apt-get install id3v2");
        Prerequisites.requireCommand("oggenc", "apt-get install vorbis-tools");
        Prerequisites.requireCommand("vorbiscomment", "apt-get install vorbis-tools");
        Prerequisites.requireCommand("opusenc", "apt-get install opus-tools");
        Prerequisites.requireCommand("opusinfo", "apt-get install opus-tools");
    }

    private static void generate(Path dest, boolean small) {
        List<String> command = new ArrayList<>(List.of("bash", vibes.resolve("generate").toString(), dest.toString()));
        if (small) {
            command.add("--small");
        }
        run(dest.getParent(), command.toArray(String[]::new)).orThrow();
    }

    private Path smallBuiltCollection(String name) {
        Path music = shared.resolve(name);
        generate(music, true);
        assertEquals(0, run(music, "tup", "init").exitCode());
        Result build = tup(music);
        assertEquals(0, build.exitCode(), build.output());
        return music;
    }

    /**
     * Rewrites a file that tup has scanned, as an edit made later would. tup 0.7.11 (Debian's) notices
     * a changed file by its status-change time (ctime) in whole seconds: a rewrite within the second of
     * the write tup recorded looks unchanged ("No commands to execute."), whatever its mtime. The rest
     * of a small collection's generation, tup init and its first build can all finish within the
     * second the generator wrote the file, so without this the test failed in 1 of 15 to 20 runs.
     * Bounded: the second turns over within about one second.
     */
    private static void rewriteInALaterSecond(Path file, String content) throws IOException, InterruptedException {
        long recorded = ctimeSeconds(file);
        for (int attempt = 1; ; attempt++) {
            Files.writeString(file, content);
            if (ctimeSeconds(file) > recorded) {
                return;
            }
            assertTrue(attempt < 30, file + " still has the status-change second tup recorded after " + attempt + " rewrites");
            Thread.sleep(100);
        }
    }

    private static long ctimeSeconds(Path file) throws IOException {
        return ((FileTime) Files.getAttribute(file, "unix:ctime")).to(TimeUnit.SECONDS);
    }

    private static void deleteStandardVariants(Path music) throws IOException {
        for (String profile : profiles.keySet()) {
            Path variant = music.resolve("build-" + profile);
            Files.delete(variant.resolve("tup.config"));
            Files.delete(variant);
        }
    }

    private static Map<String, String> readProfiles(Path dir) throws IOException {
        Map<String, String> result = new TreeMap<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".config")).toList()) {
                String name = file.getFileName().toString().replaceFirst("\\.config$", "");
                String encoder = Files.readAllLines(file).stream()
                        .filter(l -> l.startsWith("CONFIG_ENCODER="))
                        .map(l -> l.substring("CONFIG_ENCODER=".length()).strip())
                        .findFirst().orElseThrow(() -> new AssertionError(file + " names no encoder"));
                assertTrue(EXTENSIONS.containsKey(encoder), file + ": unknown encoder " + encoder);
                result.put(name, encoder);
            }
        }
        return result;
    }

    /** Every master (*.wav) of a collection, sorted, outside the variants and the rules. */
    private static List<Path> masters(Path music) throws IOException {
        try (Stream<Path> files = Files.walk(music)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".wav"))
                    .filter(f -> !music.relativize(f).getName(0).toString().startsWith("build-"))
                    .sorted().toList();
        }
    }

    /** Album folders: those holding an ALBUM tag file. */
    private static List<Path> albums(Path music) throws IOException {
        try (Stream<Path> files = Files.walk(music)) {
            return files.filter(f -> f.getFileName().toString().equals("ALBUM"))
                    .filter(f -> !music.relativize(f).getName(0).toString().startsWith("build-"))
                    .map(Path::getParent).sorted().toList();
        }
    }

    private static Path albumOf(Path wav) {
        Path dir = wav.getParent();
        return Files.exists(dir.resolve("ALBUM")) ? dir : dir.getParent();
    }

    /** An album's own tracks, then each disc folder's (by DISCNUMBER), each by name. */
    private static List<Path> albumTracksInOrder(Path album) throws IOException {
        List<Path> result = new ArrayList<>(wavsIn(album));
        List<Path> discs;
        try (Stream<Path> children = Files.list(album)) {
            discs = children.filter(Files::isDirectory).filter(d -> Files.exists(d.resolve("DISCNUMBER")))
                    .sorted(Comparator.comparingInt((Path d) -> Integer.parseInt(tagValue(d.resolve("DISCNUMBER"))))
                            .thenComparing(Comparator.naturalOrder()))
                    .toList();
        }
        assertTrue(album.getFileName().toString().equals("harmonics") == (discs.size() == 2),
                "only harmonics has two discs: " + album);
        for (Path disc : discs) {
            result.addAll(wavsIn(disc));
        }
        return result;
    }

    private static List<Path> wavsIn(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".wav")).sorted().toList();
        }
    }

    /** The tags of a master as the README defines them: nearest tag file wins, number from the name. */
    private static Map<String, String> expectedTags(Path music, Path wav) {
        String stem = wav.getFileName().toString().replaceFirst("\\.wav$", "");
        List<Path> candidatesDirs = new ArrayList<>();
        for (Path dir = wav.getParent(); dir.startsWith(music); dir = dir.getParent()) {
            candidatesDirs.add(dir);
        }
        Map<String, String> tags = new TreeMap<>();
        for (String key : TAG_FILE_KEYS) {
            List<Path> candidates = new ArrayList<>();
            candidates.add(wav.resolveSibling(stem + "." + key));
            candidatesDirs.forEach(d -> candidates.add(d.resolve(key)));
            for (Path candidate : candidates) {
                if (Files.isRegularFile(candidate)) {
                    String value = tagValue(candidate);
                    if (!value.isEmpty()) {
                        tags.put(key, value);
                    }
                    break;
                }
            }
        }
        Matcher number = Pattern.compile("^(\\d+)").matcher(stem);
        if (number.find()) {
            tags.put("TRACKNUMBER", String.valueOf(Integer.parseInt(number.group(1))));
            try {
                tags.putIfAbsent("TRACKTOTAL", String.valueOf(wavsIn(wav.getParent()).size()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return tags;
    }

    private static String tagValue(Path file) {
        try {
            return Files.readString(file).replaceFirst("[\r\n]+$", "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What an MP3 can hold of {@code tags}, as {@link #readTags} reports ID3v2 frames. */
    private static Map<String, String> asId3(Map<String, String> tags) {
        Map<String, String> id3 = new TreeMap<>(tags);
        id3.remove("DISCTOTAL");
        id3.remove("TRACKTOTAL");
        if (tags.containsKey("TRACKNUMBER") && tags.containsKey("TRACKTOTAL")) {
            id3.put("TRACKNUMBER", tags.get("TRACKNUMBER") + "/" + tags.get("TRACKTOTAL"));
        }
        if (tags.containsKey("DISCNUMBER") && tags.containsKey("DISCTOTAL")) {
            id3.put("DISCNUMBER", tags.get("DISCNUMBER") + "/" + tags.get("DISCTOTAL"));
        }
        if (tags.containsKey("DATE")) {
            id3.put("DATE", tags.get("DATE").substring(0, 4)); // ID3v2.3 TYER holds the year
        }
        return id3;
    }

    /** Drops what encoders add on their own (ENCODER, ENCODER_OPTIONS) and pictures. */
    private static Map<String, String> withoutEncoderNotes(Map<String, String> tags) {
        Map<String, String> result = new TreeMap<>(tags);
        result.keySet().removeAll(Set.of("ENCODER", "ENCODER_OPTIONS", "METADATA_BLOCK_PICTURE"));
        return result;
    }

    /** The tags of an encoded file, read with the format's own tool. */
    private static Map<String, String> readTags(String encoder, Path file) {
        Path dir = file.getParent();
        return switch (encoder) {
            case "flac" -> keyValues(run(dir, "metaflac", "--export-tags-to=-", file.toString()).orThrow().lines());
            case "oggenc" -> keyValues(run(dir, "vorbiscomment", "-l", file.toString()).orThrow().lines());
            case "opusenc" -> {
                // opusinfo prints the comments tab-indented between these two lines.
                List<String> lines = run(dir, "opusinfo", file.toString()).orThrow().lines().toList();
                int start = lines.indexOf("User comments section follows...");
                assertTrue(start >= 0, "no comments in " + file + ":\n" + lines);
                List<String> comments = new ArrayList<>();
                for (String line : lines.subList(start + 1, lines.size())) {
                    if (!line.startsWith("\t")) {
                        break;
                    }
                    comments.add(line.substring(1));
                }
                yield keyValues(comments.stream());
            }
            case "lame" -> id3Frames(run(dir, "id3v2", "-l", file.toString()).orThrow());
            default -> fail("no tag reader for " + encoder);
        };
    }

    private static Map<String, String> keyValues(Stream<String> lines) {
        Map<String, String> result = new TreeMap<>();
        lines.filter(l -> l.contains("=")).forEach(l -> {
            int eq = l.indexOf('=');
            String previous = result.put(l.substring(0, eq).toUpperCase(), l.substring(eq + 1));
            assertTrue(previous == null, "tag repeated: " + l);
        });
        return result;
    }

    /** ID3v2 frames from {@code id3v2 -l}, under the Vorbis names the rules map them from. */
    private static Map<String, String> id3Frames(String listing) {
        Map<String, String> names = Map.of("TIT2", "TITLE", "TPE1", "ARTIST", "TALB", "ALBUM",
                "TYER", "DATE", "TCON", "GENRE", "TRCK", "TRACKNUMBER", "TPOS", "DISCNUMBER",
                "TPE2", "ALBUMARTIST", "TCOM", "COMPOSER");
        Pattern frame = Pattern.compile("^([A-Z0-9]{4}) \\(.*?\\): (.*)$");
        Map<String, String> result = new TreeMap<>();
        for (String line : listing.lines().toList()) {
            Matcher m = frame.matcher(line);
            if (m.matches() && names.containsKey(m.group(1))) {
                String value = m.group(2);
                if (m.group(1).equals("TCON")) {
                    value = value.replaceFirst(" \\(\\d+\\)$", ""); // id3v2 adds the ID3v1 genre number
                }
                result.put(names.get(m.group(1)), value);
            }
        }
        return result;
    }

    // ---- files ----

    private static String withExtension(Path relative, String ext) {
        return relative.toString().replaceFirst("\\.wav$", "." + ext);
    }

    /** Regular files under {@code dir}, as sorted relative paths. */
    private static Set<String> filesUnder(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).map(f -> dir.relativize(f).toString())
                    .filter(f -> !f.startsWith(".tup/"))
                    .collect(Collectors.toCollection(TreeSet::new));
        }
    }

    /** Modification time of every file in every variant. */
    private static Map<Path, FileTime> outputTimes(Path music) throws IOException {
        Map<Path, FileTime> times = new TreeMap<>();
        try (Stream<Path> files = Files.walk(music)) {
            for (Path file : files.filter(Files::isRegularFile)
                    .filter(f -> music.relativize(f).getName(0).toString().startsWith("build-")).toList()) {
                times.put(file, Files.getLastModifiedTime(file));
            }
        }
        return times;
    }

    // ---- processes ----

    private record Result(List<String> command, int exitCode, String output) {
        /** The output, or an assertion error saying what failed. */
        String orThrow() {
            assertEquals(0, exitCode, String.join(" ", command) + " failed:\n" + output);
            return output;
        }
    }

    private static Result tup(Path music) {
        return run(music, "tup");
    }

    /** The commands tup ran, as "build-PROFILE/dir: display text", in the order it printed them. */
    private static List<String> commandsRun(Result tup) {
        List<String> commands = new ArrayList<>();
        for (String line : tup.output().lines().toList()) {
            Matcher m = TUP_COMMAND.matcher(line);
            if (m.matches()) {
                commands.add(m.group(1) + ": " + m.group(2));
            }
        }
        return commands;
    }

    /** Runs a command in {@code dir}, stdin from /dev/null, stdout and stderr merged into a file. */
    private static Result run(Path dir, String... command) {
        List<String> argv = List.of(command);
        try {
            Path log = Files.createTempFile(shared, "run-", ".log");
            Process process = new ProcessBuilder(argv)
                    .directory(dir.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            if (!process.waitFor(TUP_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                fail(String.join(" ", argv) + " did not finish in " + TUP_TIMEOUT_SECONDS + " s:\n"
                        + Files.readString(log));
            }
            String output = Files.readString(log);
            Files.delete(log);
            return new Result(argv, process.exitValue(), output);
        } catch (IOException e) {
            throw new UncheckedIOException("could not run " + argv, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running " + argv, e);
        }
    }
}
