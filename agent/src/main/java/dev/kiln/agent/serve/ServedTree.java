package dev.kiln.agent.serve;

import dev.kiln.agent.fs.Beneath;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What one user sees: a {@code /} that holds only its areas ({@code outputs}, and for the owner
 * {@code sources}), each mapped to a real directory. Resolving a path never leaves an area:
 * {@code ..} stops at {@code /}, and a symbolic link is followed only while it stays inside the
 * area it is in; one that leads anywhere else is refused with permission denied. Paths are
 * reached with file descriptors ({@link Beneath}), so a tree that changes meanwhile cannot send
 * an operation elsewhere.
 *
 * <p>Real paths are never shown to the user: {@link Resolved#virtualPath()} is what messages use.
 */
public final class ServedTree {

    private final Map<String, Area> areas;

    /** A tree of these areas (in listing order). */
    public ServedTree(List<Area> areas) {
        Map<String, Area> map = new LinkedHashMap<>();
        for (Area a : areas) {
            map.put(a.name(), a);
        }
        this.areas = Collections.unmodifiableMap(map);
    }

    /**
     * The tree of a kind of user: {@code /outputs} read-only for everyone, {@code /sources}
     * read-write for the owner when a sources directory is configured.
     *
     * @throws IOException when a directory does not exist
     */
    public static ServedTree of(UserKind kind, Path outputs, Path sources) throws IOException {
        List<Area> list = new ArrayList<>();
        list.add(new Area("outputs", outputs.toRealPath(), false));
        if (kind == UserKind.OWNER && sources != null) {
            list.add(new Area("sources", sources.toRealPath(), true));
        }
        return new ServedTree(list);
    }

    public List<Area> areas() {
        return List.copyOf(areas.values());
    }

    public Optional<Area> area(String name) {
        return Optional.ofNullable(areas.get(name));
    }

    /**
     * A path of the tree, reached: its area's directory entry held open (see {@link Beneath}).
     * Close it when the operation is done.
     *
     * @param area        the area it is in; null for {@code /} itself
     * @param entry       the entry (null for {@code /}); its last name is a link only when links
     *                    were not to be followed
     * @param virtualPath the path as the user sees it, e.g. {@code /outputs/a/b}
     */
    public record Located(Area area, Beneath.Entry entry, String virtualPath) implements AutoCloseable {
        public boolean isRoot() {
            return area == null;
        }

        public boolean writable() {
            return area != null && area.writable();
        }

        /** Whether this is an area's own directory. */
        public boolean isArea() {
            return entry != null && entry.isBase();
        }

        /** The entry as a path for operations with {@code NOFOLLOW_LINKS} (see {@link Beneath.Entry#path()}). */
        public Path path() {
            return entry.path();
        }

        @Override
        public void close() {
            if (entry != null) {
                entry.close();
            }
        }
    }

    /** The names of an absolute path after removing {@code .} and {@code ..} ({@code ..} stops at {@code /}). */
    public static List<String> normalise(List<String> names) {
        List<String> out = new ArrayList<>();
        for (String n : names) {
            if (n.isEmpty() || n.equals(".")) {
                continue;
            }
            if (n.equals("..")) {
                if (!out.isEmpty()) {
                    out.remove(out.size() - 1);
                }
                continue;
            }
            out.add(n);
        }
        return out;
    }

    /** {@link #normalise(List)} of a path written with slashes; relative paths start at {@code /}. */
    public static List<String> normalise(String path) {
        return normalise(List.of(path.split("/")));
    }

    /** The user's view of a list of names: {@code /a/b}. */
    public static String virtual(List<String> names) {
        return "/" + String.join("/", names);
    }

    /**
     * Reaches a path of the user's tree, never leaving its area (see {@link Beneath}).
     *
     * @param names       the path's names from {@code /} (normalised here)
     * @param followFinal whether a symbolic link in the last component is followed
     * @throws NoSuchFileException   when the first name is not an area
     * @throws AccessDeniedException when a symbolic link leads outside the area
     */
    public Located locate(List<String> names, boolean followFinal) throws IOException {
        List<String> clean = normalise(names);
        String virtual = virtual(clean);
        if (clean.isEmpty()) {
            return new Located(null, null, "/");
        }
        Area area = areas.get(clean.get(0));
        if (area == null) {
            throw new NoSuchFileException(virtual);
        }
        Beneath.Entry entry = Beneath.reach(area.base(), clean.subList(1, clean.size()), followFinal, virtual,
                "symbolic link leads outside /" + area.name());
        return new Located(area, entry, virtual);
    }

    /** {@link #locate(List, boolean)} of a slash-separated path. */
    public Located locate(String path, boolean followFinal) throws IOException {
        return locate(List.of(path.split("/")), followFinal);
    }

    /** The user's view of a real path inside one of the areas, if it is inside one. */
    public Optional<String> virtualOf(Path real) {
        Path norm = real.normalize();
        for (Area a : areas.values()) {
            if (norm.startsWith(a.base())) {
                Path rel = a.base().relativize(norm);
                return Optional.of("/" + a.name() + (rel.toString().isEmpty() ? "" : "/" + rel));
            }
        }
        return Optional.empty();
    }
}
