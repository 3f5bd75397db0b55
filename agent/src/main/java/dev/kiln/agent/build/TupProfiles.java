package dev.kiln.agent.build;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Prepares a tup build's profiles (variants): the definitions in kiln.builds.profiles-dir,
 * overridden by the request's, written to {@code build-NAME/tup.config} in the work tree as the
 * build user.
 */
public final class TupProfiles {

    private final Path dir;

    /** @param dir directory of NAME.config profile files, or null */
    public TupProfiles(Path dir) {
        this.dir = dir;
    }

    /**
     * The profiles a directory defines: each {@code NAME.config} file (tup.config lines,
     * {@code CONFIG_KEY=value}; blank lines and # comments skipped) is profile NAME, in name order.
     */
    public static List<BuildSpec.Profile> read(Path dir) throws IOException {
        List<BuildSpec.Profile> out = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".config")).sorted().toList()) {
                String name = f.getFileName().toString().replaceFirst("\\.config$", "");
                Map<String, String> config = new TreeMap<>();
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                    String l = line.strip();
                    if (l.isEmpty() || l.startsWith("#") || !l.contains("=")) {
                        continue;
                    }
                    config.put(l.substring(0, l.indexOf('=')).strip().replaceFirst("^CONFIG_", ""),
                            l.substring(l.indexOf('=') + 1).strip());
                }
                out.add(new BuildSpec.Profile(name, config));
            }
        }
        return out;
    }

    /**
     * Writes every profile defined for this build into {@code tree}, checks that each profile the
     * build asks for has its tup.config, and returns tup's command line.
     *
     * @param note told of each profile file written (for the build's log)
     */
    List<String> prepare(BuildSpec spec, Path tree, BuildUser user, Consumer<String> note) throws IOException {
        for (BuildSpec.Profile p : definitions(spec)) {
            if (write(tree, p, user)) {
                note.accept("kiln: wrote profile " + p.name() + " to " + tree.resolve("build-" + p.name()).resolve("tup.config") + "\n");
            }
        }
        List<String> argv = new ArrayList<>(List.of("tup"));
        spec.profiles().forEach(p -> argv.add("build-" + p));
        for (String p : spec.profiles()) {
            if (!Files.isRegularFile(tree.resolve("build-" + p).resolve("tup.config"))) {
                throw new IllegalArgumentException("profile '" + p + "' is not defined: no " + tree.resolve("build-" + p)
                        .resolve("tup.config") + " and no definition in the request or kiln.builds.profiles-dir");
            }
        }
        return argv;
    }

    /** Profile definitions from kiln.builds.profiles-dir, overridden by the request's. */
    private List<BuildSpec.Profile> definitions(BuildSpec spec) throws IOException {
        Map<String, BuildSpec.Profile> byName = new TreeMap<>();
        if (dir != null && Files.isDirectory(dir)) {
            read(dir).forEach(p -> byName.put(p.name(), p));
        }
        spec.profileDefinitions().forEach(p -> byName.put(p.name(), p));
        return new ArrayList<>(byName.values());
    }

    /**
     * Writes a profile's {@code build-NAME/tup.config}, with the build user's file access: the
     * work tree is the build user's to change at any moment, so nothing there is written with
     * root's. Returns false when the file already says the same.
     */
    private static boolean write(Path tree, BuildSpec.Profile profile, BuildUser user) throws IOException {
        Path dir = tree.resolve("build-" + profile.name());
        StringBuilder text = new StringBuilder();
        new TreeMap<>(profile.config()).forEach((k, v) ->
                text.append("CONFIG_").append(k.replaceFirst("^CONFIG_", "")).append('=').append(v).append('\n'));
        Path config = dir.resolve("tup.config");
        try {
            return user.access().run(() -> {
                if (Files.isSymbolicLink(dir)) {
                    throw new IllegalArgumentException(dir + " is a symbolic link; refusing to write a profile through it");
                }
                if (Files.isRegularFile(config, LinkOption.NOFOLLOW_LINKS)
                        && Files.readString(config, StandardCharsets.UTF_8).equals(text.toString())) {
                    return false; // unchanged: leave it alone so tup has nothing to re-parse
                }
                if (Files.isSymbolicLink(config)) {
                    throw new IllegalArgumentException(config + " is a symbolic link; refusing to write a profile through it");
                }
                if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                    Files.createDirectory(dir);
                }
                Files.writeString(config, text.toString(), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
                return true;
            });
        } catch (FileSystemException e) {
            throw new IOException("cannot write profile " + profile.name() + " to " + config + " as the build user "
                    + user.name() + ": " + (e.getReason() != null ? e.getReason()
                    : e instanceof AccessDeniedException ? "permission denied" : e.getClass().getSimpleName()), e);
        }
    }
}
