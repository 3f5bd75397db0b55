package dev.kiln.agent.serve;

import org.apache.sshd.scp.common.ScpHelper;
import org.apache.sshd.scp.common.ScpSourceStreamResolver;
import org.apache.sshd.scp.common.helpers.ScpAckInfo;
import org.apache.sshd.scp.server.ScpCommand;
import org.apache.sshd.server.channel.ChannelSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;

/**
 * scp's server side ({@code scp -f} / {@code scp -t}, what {@code scp -O} runs) on the user's
 * tree: MINA SSHD's scp protocol ({@link ScpHelper}) over the session's {@link TreeFileSystem},
 * with Kiln's file handling ({@link ServedScpFiles}). Downloads reach anything the user can read,
 * uploads only a writable area (the owner's {@code /sources}); everything else gets scp's
 * "Permission denied", by the same rules as SFTP because both go through
 * {@link TreeFileSystemProvider}.
 *
 * <p>The command line is split like a shell would ({@link CommandWords}), so quoted paths and
 * several sources work; a failure reaches the client as one scp error line that names the user's
 * path, never the real one.
 */
final class ServedScp extends ScpCommand {

    private static final Logger LOG = LoggerFactory.getLogger(ServedScp.class);

    private final List<String> paths;
    private final ServedScpFiles files;

    private ServedScp(ChannelSession channel, Options options, ServedScpFiles files) {
        // MINA parses this line itself, splitting at every space: it gets only the mode.
        super(channel, "scp " + (options.source() ? "-f" : "-t"), null, ScpHelper.DEFAULT_SEND_BUFFER_SIZE,
                ScpHelper.DEFAULT_RECEIVE_BUFFER_SIZE, files, null);
        this.files = files;
        this.paths = options.paths();
        optF = options.source();
        optT = !options.source();
        optR = options.recursive();
        optP = options.times();
        optD = options.targetIsDirectory();
        path = paths.get(0);
    }

    /**
     * The command for an {@code scp} command line.
     *
     * @throws Usage when it is not scp's server side or asks for what is not served
     */
    static ServedScp create(ChannelSession channel, List<String> words) throws Usage {
        return new ServedScp(channel, Options.parse(words), new ServedScpFiles());
    }

    /** A refused command line; the message is for the user. */
    static final class Usage extends Exception {
        Usage(String m) {
            super(m);
        }
    }

    /** What the command line asks for. */
    record Options(boolean source, boolean recursive, boolean times, boolean targetIsDirectory, List<String> paths) {

        static Options parse(List<String> words) throws Usage {
            Character mode = null;
            boolean recursive = false;
            boolean times = false;
            boolean dir = false;
            boolean options = true;
            List<String> paths = new ArrayList<>();
            for (String a : words.subList(1, words.size())) {
                if (options && a.equals("--")) {
                    options = false;
                } else if (options && a.startsWith("-") && a.length() > 1) {
                    for (char c : a.substring(1).toCharArray()) {
                        switch (c) {
                            case 'f', 't' -> {
                                if (mode != null) {
                                    throw new Usage("scp: only one of -f and -t");
                                }
                                mode = c;
                            }
                            case 'r' -> recursive = true;
                            case 'p' -> times = true;
                            case 'd' -> dir = true;
                            case 'v', 'q' -> {
                            }
                            default -> throw new Usage("scp: option -" + c + " is not supported here");
                        }
                    }
                } else {
                    paths.add(a);
                }
            }
            if (mode == null) {
                throw new Usage("scp: only scp's server side (-f or -t) runs here; use scp from your machine");
            }
            if (paths.isEmpty()) {
                throw new Usage("scp: no path given");
            }
            if (mode == 't' && paths.size() != 1) {
                throw new Usage("scp: one target expected");
            }
            return new Options(mode == 'f', recursive, times, dir, List.copyOf(paths));
        }
    }

    @Override
    public void run() {
        int status = ScpAckInfo.OK;
        String message = null;
        String user = getServerSession().getUsername();
        Helper helper = new Helper();
        LOG.info("ssh: {} runs scp {} {}", user, optF ? "-f" : "-t", paths);
        try {
            if (optT) {
                helper.receive(getCommand(), helper.resolveLocalPath(path), optR, optD, optP, receiveBufferSize);
            } else {
                helper.send(paths, optR, optP, sendBufferSize);
                if (helper.skipped > 0) {
                    status = ScpAckInfo.WARNING;
                    message = "scp: " + helper.skipped + " file(s) not sent";
                }
            }
        } catch (IOException | RuntimeException e) {
            status = ScpAckInfo.ERROR;
            String why = describe(e);
            message = "scp: " + why;
            LOG.info("ssh: scp for {} ended: {}", user, why);
            LOG.debug("ssh: scp for {} ended", user, e);
            try {
                ScpAckInfo.sendAck(getOutputStream(), StandardCharsets.UTF_8, status, message);
            } catch (IOException gone) {
                // the client is gone
            }
        } finally {
            files.closeAll();
            onExit(status, message == null ? "" : message);
        }
    }

    /**
     * MINA's scp protocol, where a source that cannot be sent is reported to the client and
     * skipped, as OpenSSH's scp does, rather than ending the transfer.
     */
    private final class Helper extends ScpHelper {
        int skipped;

        Helper() {
            super(ServedScp.this.getServerSession(), ServedScp.this.getInputStream(), ServedScp.this.getOutputStream(),
                    ServedScp.this.fileSystem, ServedScp.this.opener, ServedScp.this.listener);
        }

        @Override
        protected void send(Path local, boolean recursive, boolean preserve, int bufferSize, LinkOption... options)
                throws IOException {
            Path file = local.normalize().toAbsolutePath();
            BasicFileAttributes attrs;
            try {
                attrs = Files.readAttributes(file, BasicFileAttributes.class, options);
            } catch (IOException e) {
                skip(describe(e));
                return;
            }
            if (attrs.isRegularFile()) {
                sendFile(file, preserve, bufferSize);
            } else if (attrs.isDirectory() && recursive) {
                sendDir(file, preserve, bufferSize);
            } else {
                skip(file + ": not a regular file");
            }
        }

        @Override
        public void sendFile(Path local, boolean preserve, int bufferSize) throws IOException {
            ScpSourceStreamResolver source;
            try {
                source = opener.createScpSourceStreamResolver(getSession(), local);
            } catch (IOException e) {
                skip(describe(e));
                return;
            }
            sendStream(source, preserve, bufferSize);
        }

        private void skip(String why) throws IOException {
            skipped++;
            LOG.info("ssh: scp for {} skips {}", getSession().getUsername(), why);
            sendWarning("scp: " + why);
        }
    }

    /** What went wrong, as scp says it: the user's path, then the reason. */
    static String describe(Throwable e) {
        if (e instanceof FileSystemException fse && fse.getFile() != null) {
            String reason = fse.getReason();
            String what;
            if (e instanceof AccessDeniedException) {
                what = reason == null ? "Permission denied" : "Permission denied (" + reason + ")";
            } else if (e instanceof NoSuchFileException) {
                what = "No such file or directory";
            } else if (e instanceof FileAlreadyExistsException) {
                what = "File exists";
            } else if (e instanceof NotDirectoryException) {
                what = "Not a directory";
            } else {
                what = reason == null ? "Input/output error" : reason;
            }
            return fse.getFile() + ": " + what;
        }
        if (e instanceof InvalidPathException ipe) {
            return "protocol error: bad file name " + printable(ipe.getInput());
        }
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : printable(m.startsWith("scp: ") ? m.substring(5) : m);
    }

    private static String printable(String s) {
        String t = s.replaceAll("\\p{Cntrl}", "?");
        return t.length() > 200 ? t.substring(0, 200) + "..." : t;
    }
}
