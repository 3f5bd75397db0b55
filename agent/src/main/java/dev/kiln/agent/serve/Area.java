package dev.kiln.agent.serve;

import java.nio.file.Path;

/**
 * One top-level directory of a user's tree, e.g. {@code /outputs}.
 *
 * @param name     its name under the user's {@code /}
 * @param base     the real directory it shows (a real path: no symbolic links in it)
 * @param writable whether the user may change anything in it
 */
public record Area(String name, Path base, boolean writable) {
}
