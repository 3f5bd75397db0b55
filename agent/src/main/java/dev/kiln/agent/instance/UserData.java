package dev.kiln.agent.instance;

import dev.kiln.agent.config.SettingsCatalog;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;

import java.util.Map;
import java.util.Optional;

/**
 * Agent settings carried in EC2 user data: a YAML document in the same shape as
 * {@code /etc/kiln/agent.yml} (a top-level {@code kiln:} map). User data that is a shell script
 * or a cloud-init document belongs to someone else and is ignored.
 */
public final class UserData {

    private UserData() {
    }

    /**
     * Parses user data into flattened settings.
     *
     * @return the settings, or empty when the user data is not Kiln's (script, cloud-config, blank)
     * @throws IllegalArgumentException when it looks like Kiln settings but is not valid YAML
     */
    public static Optional<Map<String, Object>> settings(String userData) {
        String text = userData.strip();
        if (text.isEmpty() || text.startsWith("#!") || text.startsWith("#cloud-config")
                || text.startsWith("Content-Type:")) {
            return Optional.empty();
        }
        Object doc;
        try {
            doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(text);
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
}
