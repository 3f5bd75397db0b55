package dev.kiln.controller.cli;

import picocli.CommandLine;
import picocli.CommandLine.Help;
import picocli.CommandLine.Model.UsageMessageSpec;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How help reads at any width. The commands' descriptions are written as short source lines;
 * picocli prints each array element on lines of its own, so a source line break would end a help
 * line mid-sentence. This joins them into paragraphs that picocli wraps to the help width, keeps
 * indented lines (examples) as they are, and lists the commands with their header, or else the
 * first sentence of their description.
 */
public final class HelpLayout {

    private HelpLayout() {
    }

    /**
     * Applies the layout to {@code root} and the subcommands it has, the first time help is shown:
     * a command that shows no help loads none of picocli's help classes.
     */
    public static void apply(CommandLine root) {
        boolean[] laidOut = {false};
        root.setHelpFactory((spec, colors) -> {
            if (!laidOut[0]) {
                laidOut[0] = true;
                layOut(root);
            }
            return new Help(spec, colors);
        });
    }

    private static void layOut(CommandLine root) {
        List<CommandLine> all = new ArrayList<>();
        all.add(root);
        all.addAll(root.getSubcommands().values());
        for (CommandLine c : all) {
            UsageMessageSpec usage = c.getCommandSpec().usageMessage();
            usage.description(paragraphs(usage.description()));
        }
        TimeoutMixin.describe(all);
        root.getHelpSectionMap().put(UsageMessageSpec.SECTION_KEY_COMMAND_LIST, HelpLayout::commandList);
    }

    /** Source lines joined into paragraphs; a blank line ends one, an indented line stands alone. */
    static String[] paragraphs(String[] lines) {
        List<String> out = new ArrayList<>();
        StringBuilder paragraph = new StringBuilder();
        for (String line : lines) {
            if (line.isBlank() || line.startsWith(" ")) {
                if (paragraph.length() > 0) {
                    out.add(paragraph.toString());
                    paragraph.setLength(0);
                }
                if (!line.isBlank()) {
                    out.add(line);
                }
            } else {
                paragraph.append(paragraph.length() > 0 ? " " : "").append(line.strip());
            }
        }
        if (paragraph.length() > 0) {
            out.add(paragraph.toString());
        }
        return out.toArray(String[]::new);
    }

    /** A command's first sentence: up to the first ". " or ": ", ending with a full stop. */
    static String summary(String[] description) {
        if (description.length == 0) {
            return "";
        }
        String text = description[0].strip();
        int end = text.length();
        for (int i = 1; i + 1 < text.length(); i++) {
            char c = text.charAt(i);
            boolean abbreviation = text.startsWith("e.g", i - 3) || text.startsWith("i.e", i - 3);
            if ((c == '.' && !abbreviation || c == ':') && text.charAt(i + 1) == ' ') {
                end = i;
                break;
            }
        }
        String s = text.substring(0, end);
        if (s.endsWith(":") || s.endsWith(",")) {
            s = s.substring(0, s.length() - 1);
        }
        return s.endsWith(".") ? s : s + ".";
    }

    private static String commandList(Help help) {
        Map<String, Help> subcommands = help.subcommands();
        if (subcommands.isEmpty()) {
            return "";
        }
        int nameWidth = subcommands.keySet().stream().mapToInt(String::length).max().orElse(0) + 4;
        int width = help.commandSpec().usageMessage().width();
        Help.TextTable table = Help.TextTable.forColumns(help.colorScheme(),
                new Help.Column(nameWidth, 2, Help.Column.Overflow.SPAN),
                new Help.Column(Math.max(20, width - nameWidth), 2, Help.Column.Overflow.WRAP));
        subcommands.forEach((name, sub) -> {
            UsageMessageSpec usage = sub.commandSpec().usageMessage();
            table.addRowValues(name, summary(usage.header().length > 0 ? usage.header() : usage.description()));
        });
        return table.toString();
    }
}
