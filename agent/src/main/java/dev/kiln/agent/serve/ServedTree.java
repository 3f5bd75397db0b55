package dev.kiln.agent.serve;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemLoopException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What one user sees: a {@code /} that holds only its areas ({@code outputs}, and for the owner
 * {@code sources}), each mapped to a real directory. Resolving a path never leaves an area:
 * {@code ..} stops at {@code /}, and a symbolic link is followed only while it stays inside the
 * area it is in; one that leads anywhere else is refused with permission denied.
 *
 * <p>Real paths are never shown to the user: {@link Resolved#virtualPath()} is what messages use.
 */
public final class ServedTree {

    /** At most this many symbolic links are followed while resolving one path (as Linux's ELOOP). */
    static final int MAX_LINKS = 40;

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
     * A resolved path.
     *
     * @param area        the area it is in; null for {@code /} itself
     * @param real        the real path (null for {@code /}); only its last component may be a
     *                    symbolic link, and only when links were not to be followed
     * @param virtualPath the path as the user sees it, e.g. {@code /outputs/a/b}
     */
    public record Resolved(Area area, Path real, String virtualPath) {
        public boolean isRoot() {
            return area == null;
        }

        public boolean writable() {
            return area != null && area.writable();
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
     * Resolves a path of the user's tree to a real path.
     *
     * @param names       the path's names from {@code /} (normalised here)
     * @param followFinal whether a symbolic link in the last component is followed
     * @throws NoSuchFileException   when the first name is not an area
     * @throws AccessDeniedException when a symbolic link leads outside the area
     */
    public Resolved resolve(List<String> names, boolean followFinal) throws IOException {
        List<String> clean = normalise(names);
        String virtual = virtual(clean);
        if (clean.isEmpty()) {
            return new Resolved(null, null, "/");
        }
        Area area = areas.get(clean.get(0));
        if (area == null) {
            throw new NoSuchFileException(virtual);
        }
        Path base = area.base();
        Path current = base;
        Deque<String> todo = new ArrayDeque<>(clean.subList(1, clean.size()));
        int links = 0;
        while (!todo.isEmpty()) {
            String n = todo.pollFirst();
            if (n.isEmpty() || n.equals(".")) {
                continue;
            }
            if (n.equals("..")) {
                // Only symbolic link targets bring ".." here: the user's own were removed above.
                if (current.equals(base)) {
                    throw new AccessDeniedException(virtual, null, "symbolic link leads outside " + "/" + area.name());
                }
                current = current.getParent();
                continue;
            }
            if (n.contains("/") || n.indexOf('\0') >= 0) {
                throw new NoSuchFileException(virtual);
            }
            Path next = current.resolve(n);
            boolean last = todo.isEmpty();
            if ((!last || followFinal) && Files.isSymbolicLink(next)) {
                if (++links > MAX_LINKS) {
                    throw new FileSystemLoopException(virtual);
                }
                Path target = Files.readSymbolicLink(next);
                List<String> targetNames = new ArrayList<>();
                for (Path t : target) {
                    targetNames.add(t.toString());
                }
                if (target.isAbsolute()) {
                    Path norm = target.normalize();
                    if (!norm.startsWith(base)) {
                        throw new AccessDeniedException(virtual, null, "symbolic link leads outside /" + area.name());
                    }
                    current = base;
                    targetNames.clear();
                    for (Path t : base.relativize(norm)) {
                        if (!t.toString().isEmpty()) {
                            targetNames.add(t.toString());
                        }
                    }
                }
                for (int i = targetNames.size() - 1; i >= 0; i--) {
                    todo.addFirst(targetNames.get(i));
                }
                continue;
            }
            current = next;
        }
        return new Resolved(area, current, virtual);
    }

    /** {@link #resolve(List, boolean)} of a slash-separated path. */
    public Resolved resolve(String path, boolean followFinal) throws IOException {
        return resolve(List.of(path.split("/")), followFinal);
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
