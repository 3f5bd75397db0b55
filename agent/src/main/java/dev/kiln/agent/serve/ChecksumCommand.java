package dev.kiln.agent.serve;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystem;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * {@code sha256sum} and {@code md5sum} as coreutils print them ({@code HASH  NAME}), computed on
 * the user's tree (so they see exactly what SFTP serves, with the same symbolic link rules), for
 * clients that verify what they downloaded.
 */
final class ChecksumCommand extends SessionCommand {

    private final String tool;
    private final String algorithm;
    private final List<String> args;
    private final FileSystem fs;

    ChecksumCommand(String tool, List<String> args, FileSystem fs) {
        this.tool = tool;
        this.algorithm = tool.equals("md5sum") ? "MD5" : "SHA-256";
        this.args = args;
        this.fs = fs;
    }

    @Override
    protected int run() throws IOException {
        boolean binary = false;
        boolean options = true;
        int failures = 0;
        int files = 0;
        for (String a : args) {
            if (options && a.equals("--")) {
                options = false;
            } else if (options && (a.equals("-b") || a.equals("--binary"))) {
                binary = true;
            } else if (options && (a.equals("-t") || a.equals("--text"))) {
                binary = false;
            } else if (options && a.startsWith("-") && a.length() > 1) {
                say(tool + ": option " + a + " is not supported here");
                return 1;
            } else {
                files++;
                Path p = fs.getPath(a.startsWith("/") ? a : "/" + a);
                try (InputStream in = Files.newInputStream(p)) {
                    line(hash(in), a, binary);
                } catch (NoSuchFileException e) {
                    say(tool + ": " + a + ": No such file or directory");
                    failures++;
                } catch (AccessDeniedException e) {
                    say(tool + ": " + a + ": Permission denied");
                    failures++;
                } catch (IOException e) {
                    say(tool + ": " + a + ": " + (Files.isDirectory(p) ? "Is a directory" : "Input/output error"));
                    failures++;
                }
            }
        }
        if (files == 0) {
            line(hash(in), "-", binary);
        }
        return failures == 0 ? 0 : 1;
    }

    private void line(String hash, String name, boolean binary) throws IOException {
        out.write((hash + (binary ? " *" : "  ") + name + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private String hash(InputStream in) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        byte[] buf = new byte[65536];
        int n;
        while ((n = in.read(buf)) >= 0) {
            md.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
