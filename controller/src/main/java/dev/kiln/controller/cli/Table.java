package dev.kiln.controller.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** Aligned plain-text columns; a header row first. */
public final class Table {

    private final List<String[]> rows = new ArrayList<>();

    public Table(String... header) {
        rows.add(header);
    }

    public Table row(String... cells) {
        rows.add(cells);
        return this;
    }

    public void print(PrintStream out) {
        int cols = rows.stream().mapToInt(r -> r.length).max().orElse(0);
        int[] width = new int[cols];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                width[i] = Math.max(width[i], r[i] == null ? 1 : r[i].length());
            }
        }
        for (String[] r : rows) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                String cell = r[i] == null || r[i].isEmpty() ? "-" : r[i];
                b.append(cell);
                if (i < r.length - 1) {
                    b.append(" ".repeat(width[i] - cell.length() + 2));
                }
            }
            out.println(b.toString().stripTrailing());
        }
    }
}
