package dev.kiln.controller.cli;

/** How a command prints its data on stdout. */
public enum OutputFormat {
    /** Aligned columns for people. */
    table,
    /** Like table, with more columns. */
    wide,
    /** JSON for scripts. */
    json
}
