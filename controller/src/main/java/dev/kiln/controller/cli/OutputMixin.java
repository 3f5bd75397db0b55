package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.config.ControllerSettings;
import picocli.CommandLine.Option;

import java.util.Locale;

/** {@code -o table|wide|json}, shared by every command that prints data. */
public class OutputMixin {

    @Option(names = {"-o", "--output"}, paramLabel = "FORMAT",
            description = "Output format: table, wide or json (default: table; env KILN_OUTPUT).")
    String output;

    /** The format after flag &gt; env &gt; config file &gt; default. */
    public OutputFormat format(ControllerSettings settings) {
        String value = settings.get("output", output).orElse("table");
        try {
            return OutputFormat.valueOf(value.toLowerCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new KilnException(ExitCodes.USAGE, "unknown output format '" + value + "'; use table, wide or json");
        }
    }
}
