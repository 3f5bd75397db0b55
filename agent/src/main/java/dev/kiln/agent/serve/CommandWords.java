package dev.kiln.agent.serve;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits the command line an SSH client sends into words, the way a POSIX shell would for plain
 * words, quotes and backslashes (rsync escapes special characters in its remote arguments with
 * backslashes). There is no shell behind it, so shell syntax (; | & $ ` &lt; &gt; and the like,
 * unquoted) is refused rather than passed on.
 */
public final class CommandWords {

    private CommandWords() {
    }

    /**
     * @throws IllegalArgumentException with a message for the user, for shell syntax or an
     *                                  unterminated quote
     */
    public static List<String> split(String line) {
        List<String> words = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean inWord = false;
        int i = 0;
        int n = line.length();
        while (i < n) {
            char c = line.charAt(i);
            if (c == ' ' || c == '\t') {
                if (inWord) {
                    words.add(cur.toString());
                    cur.setLength(0);
                    inWord = false;
                }
                i++;
            } else if (c == '\\') {
                if (i + 1 >= n) {
                    throw new IllegalArgumentException("trailing backslash");
                }
                cur.append(line.charAt(i + 1));
                inWord = true;
                i += 2;
            } else if (c == '\'') {
                int end = line.indexOf('\'', i + 1);
                if (end < 0) {
                    throw new IllegalArgumentException("unterminated quote");
                }
                cur.append(line, i + 1, end);
                inWord = true;
                i = end + 1;
            } else if (c == '"') {
                i++;
                while (true) {
                    if (i >= n) {
                        throw new IllegalArgumentException("unterminated quote");
                    }
                    char d = line.charAt(i);
                    if (d == '"') {
                        i++;
                        break;
                    }
                    if (d == '\\' && i + 1 < n && "\\\"$`".indexOf(line.charAt(i + 1)) >= 0) {
                        cur.append(line.charAt(i + 1));
                        i += 2;
                    } else if (d == '$' || d == '`') {
                        throw new IllegalArgumentException("shell syntax is not supported: " + d);
                    } else {
                        cur.append(d);
                        i++;
                    }
                }
                inWord = true;
            } else if (";|&<>$`(){}\n\r".indexOf(c) >= 0) {
                throw new IllegalArgumentException("shell syntax is not supported: " + (c == '\n' ? "newline" : String.valueOf(c)));
            } else {
                cur.append(c);
                inWord = true;
                i++;
            }
        }
        if (inWord) {
            words.add(cur.toString());
        }
        return words;
    }
}
