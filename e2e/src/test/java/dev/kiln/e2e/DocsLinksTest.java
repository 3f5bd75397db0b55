package dev.kiln.e2e;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The repository's Markdown as a reader follows it: every link leads to a file of this repository
 * (and to a heading that exists, when it names one), and none leads outside, since the docs must be
 * complete without a network. URLs inside code (commands a reader runs) are not links.
 */
class DocsLinksTest {

    static final Path ROOT = ImageAndUnitTest.ROOT;

    private static final Pattern FENCE = Pattern.compile("(?ms)^\\s*```.*?^\\s*```");
    private static final Pattern INLINE_CODE = Pattern.compile("`[^`\n]*`");
    private static final Pattern COMMENT = Pattern.compile("(?s)<!--.*?-->");
    /** [text](target) and ![alt](target), with an optional "title". */
    private static final Pattern LINK = Pattern.compile("\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)");
    private static final Pattern URL = Pattern.compile("(?i)\\b(?:https?|ftp)://\\S+|<(?:https?|ftp)://[^>]*>|\\bwww\\.\\S+");
    private static final Pattern HEADING = Pattern.compile("(?m)^#{1,6}\\s+(.+?)\\s*#*\\s*$");

    /** Every Markdown file of the repository, outside build output and VCS metadata. */
    static List<Path> markdownFiles() throws IOException {
        try (Stream<Path> files = Files.walk(ROOT)) {
            return files.filter(p -> p.toString().endsWith(".md"))
                    .filter(p -> {
                        Path rel = ROOT.relativize(p);
                        for (Path part : rel) {
                            String name = part.toString();
                            if (name.equals("target") || name.startsWith(".") || name.equals("node_modules")) {
                                return false;
                            }
                        }
                        return true;
                    })
                    .sorted()
                    .toList();
        }
    }

    /** The text a reader sees as prose: code blocks, inline code and HTML comments removed. */
    static String prose(String markdown) {
        String s = FENCE.matcher(markdown).replaceAll("");
        s = COMMENT.matcher(s).replaceAll("");
        return INLINE_CODE.matcher(s).replaceAll("");
    }

    /** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
    static String anchor(String heading) {
        String text = heading.replace("`", "").strip().toLowerCase(Locale.ROOT);
        return text.replaceAll("[^\\p{L}\\p{N} _-]", "").replace(' ', '-');
    }

    static Set<String> anchors(Path file) throws IOException {
        Set<String> out = new HashSet<>();
        Matcher m = HEADING.matcher(FENCE.matcher(Files.readString(file)).replaceAll(""));
        while (m.find()) {
            out.add(anchor(m.group(1)));
        }
        return out;
    }

    /** What is wrong with the links of one file; empty when a reader can follow all of them. */
    static List<String> problems(Path file) throws IOException {
        List<String> problems = new ArrayList<>();
        String name = ROOT.relativize(file).toString();
        String text = prose(Files.readString(file));
        Matcher url = URL.matcher(text);
        while (url.find()) {
            problems.add(name + ": links outside the repository: " + url.group().replaceAll("[).,;:]+$", ""));
        }
        Matcher link = LINK.matcher(text);
        while (link.find()) {
            String target = link.group(1);
            if (target.matches("(?i)[a-z][a-z0-9+.-]*:.*")) {
                if (!URL.matcher(target).find()) {
                    problems.add(name + ": links outside the repository: " + target);
                }
                continue;
            }
            int hash = target.indexOf('#');
            String path = hash < 0 ? target : target.substring(0, hash);
            String fragment = hash < 0 ? null : target.substring(hash + 1);
            Path resolved = path.isEmpty() ? file : file.getParent().resolve(path).normalize();
            if (!resolved.startsWith(ROOT)) {
                problems.add(name + ": links outside the repository: " + target);
            } else if (!Files.exists(resolved)) {
                problems.add(name + ": links to a file that does not exist: " + target);
            } else if (fragment != null && resolved.toString().endsWith(".md") && !anchors(resolved).contains(fragment)) {
                problems.add(name + ": links to a heading that does not exist: " + target);
            }
        }
        return problems;
    }

    @Test
    void everyLinkInTheDocsLeadsToAFileOfThisRepository() throws IOException {
        List<Path> files = markdownFiles();
        assertTrue(files.contains(ROOT.resolve("README.md")), "README.md is among " + files);
        assertTrue(files.contains(ROOT.resolve("docs/cli.md")), "docs/cli.md is among " + files);
        List<String> problems = new ArrayList<>();
        for (Path f : files) {
            problems.addAll(problems(f));
        }
        assertEquals(List.of(), problems, String.join("\n", problems));
    }

    @Test
    void theCheckSeesBrokenAndOutsideLinks() throws IOException {
        Path docs = ROOT.resolve("docs");
        Path probe = Files.createTempFile(docs, "links-probe", ".md");
        try {
            Files.writeString(probe, """
                    # Probe

                    [gone](no-such-file.md), [away](https://example.org/), <http://example.org>,
                    [no heading](cli.md#no-such-heading), [fine](cli.md#settings), [here](#probe).

                    ```sh
                    curl -s https://example.org/in-code   # a command, not a link
                    ```
                    """);
            List<String> problems = problems(probe);
            assertEquals(4, problems.size(), String.join("\n", problems));
            assertTrue(problems.stream().anyMatch(p -> p.contains("does not exist: no-such-file.md")), problems.toString());
            assertTrue(problems.stream().anyMatch(p -> p.contains("https://example.org/")), problems.toString());
            assertTrue(problems.stream().anyMatch(p -> p.contains("<http://example.org>")), problems.toString());
            assertTrue(problems.stream().anyMatch(p -> p.contains("heading that does not exist: cli.md#no-such-heading")),
                    problems.toString());
            assertFalse(problems.stream().anyMatch(p -> p.contains("in-code")), problems.toString());
        } finally {
            Files.delete(probe);
        }
    }
}
