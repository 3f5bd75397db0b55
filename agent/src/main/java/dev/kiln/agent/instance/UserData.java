package dev.kiln.agent.instance;

import dev.kiln.agent.config.SettingsCatalog;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;
import org.yaml.snakeyaml.nodes.Tag;
import org.yaml.snakeyaml.representer.Representer;
import org.yaml.snakeyaml.resolver.Resolver;

import java.util.Map;
import java.util.Optional;

/**
 * Agent settings carried in EC2 user data: a YAML document in the same shape as
 * {@code /etc/kiln/agent.yml} (a top-level {@code kiln:} map). User data that is a shell script
 * or a cloud-init document belongs to someone else and is ignored.
 *
 * <p>Every scalar is read as the text it is: {@code no}, {@code on}, {@code 0x10}, {@code 1e3} or
 * {@code 2024-01-01} stay strings (YAML 1.1 would make them a boolean, numbers and a date), so a
 * name or path means what it says; what each setting accepts ({@code true}, a port) is checked by
 * {@link SettingsCatalog}, from the text. Only {@code ~}, {@code null} and an empty value are null.
 * Explicit tags other than {@code !!str}, {@code !!seq}, {@code !!map} and {@code !!null},
 * duplicate keys, and aliases of maps or lists (the "billion laughs") are refused.
 */
public final class UserData {

    /**
     * The most user data read, in code points: EC2 takes 16 KiB; the margin is for hand-written
     * user data in local tests, and a document this big is refused before it is parsed.
     */
    static final int MAX_CODE_POINTS = 64 * 1024;

    private UserData() {
    }

    /**
     * Parses user data into flattened settings.
     *
     * @return the settings, or empty when the user data is not Kiln's (script, cloud-config, blank)
     * @throws IllegalArgumentException when it looks like Kiln settings but is not valid YAML, or
     *                                  uses what Kiln's user data never does (see the class comment)
     */
    public static Optional<Map<String, Object>> settings(String userData) {
        String start = userData.stripLeading();
        if (start.isBlank() || start.startsWith("#!") || start.startsWith("#cloud-config")
                || start.startsWith("Content-Type:")) {
            return Optional.empty();
        }
        Object doc;
        try {
            // The whole text: stripping its end would cut the trailing newlines of a last value kept with |+.
            doc = loader().load(userData);
        } catch (MarkedYAMLException e) {
            // One line, for the journal: what is wrong and where (1-based, as editors count).
            Mark mark = e.getProblemMark();
            throw new IllegalArgumentException("EC2 user data is not valid YAML: " + e.getProblem()
                    + (mark == null ? "" : " at line " + (mark.getLine() + 1) + ", column " + (mark.getColumn() + 1))
                    + (e.getContext() == null ? "" : " (" + e.getContext() + ")"), e);
        } catch (YAMLException e) {
            throw new IllegalArgumentException("EC2 user data is not valid YAML: "
                    + String.join(" ", e.getMessage().strip().split("\\s*\\n\\s*")), e);
        }
        if (!(doc instanceof Map<?, ?> map) || !map.containsKey("kiln")) {
            return Optional.empty();
        }
        return Optional.of(SettingsCatalog.flatten(map));
    }

    /** A loader of plain data only: see the class comment. */
    private static Yaml loader() {
        LoaderOptions options = new LoaderOptions();
        options.setAllowDuplicateKeys(false);
        options.setMaxAliasesForCollections(0);
        options.setAllowRecursiveKeys(false);
        options.setCodePointLimit(MAX_CODE_POINTS);
        DumperOptions unused = new DumperOptions();
        return new Yaml(new TextConstructor(options), new Representer(unused), unused, options, new TextResolver());
    }

    /** Resolves a plain scalar to null ({@code ~}, {@code null}, empty) or else to a string, never to a YAML 1.1 type. */
    private static final class TextResolver extends Resolver {
        @Override
        protected void addImplicitResolvers() {
            addImplicitResolver(Tag.NULL, NULL, "~nN\0", 10);
            addImplicitResolver(Tag.NULL, EMPTY, null, 10);
        }
    }

    /** SafeConstructor without the scalar types: an explicit !!int, !!bool, !!binary or !!timestamp is refused. */
    private static final class TextConstructor extends SafeConstructor {
        TextConstructor(LoaderOptions options) {
            super(options);
            for (Tag tag : new Tag[]{Tag.BOOL, Tag.INT, Tag.FLOAT, Tag.BINARY, Tag.TIMESTAMP, Tag.OMAP, Tag.PAIRS, Tag.SET}) {
                yamlConstructors.remove(tag);
            }
        }
    }
}
