package dev.kiln.agent.serve;

import org.apache.sshd.common.file.FileSystemAware;
import org.apache.sshd.common.file.FileSystemFactory;
import org.apache.sshd.common.session.SessionContext;
import org.apache.sshd.server.Environment;
import org.apache.sshd.server.ExitCallback;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;
import org.apache.sshd.server.command.CommandFactory;
import org.apache.sshd.server.shell.ShellFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileSystem;
import java.util.List;
import java.util.function.Function;

/**
 * What an {@code exec} request may run: {@code rsync --server} (checked by {@link RsyncPolicy},
 * run in the {@link Sandbox}), scp's server side ({@code scp -f}/{@code scp -t}, served by
 * {@link ServedScp}), and {@code sha256sum}/{@code md5sum}. Everything else, and every
 * {@code shell} request, gets a one-line refusal on stderr and exit status 126 (shell: 1).
 */
final class ServeCommands implements CommandFactory, ShellFactory {

    /** Exit status of a refused command, as a shell reports a command it cannot execute. */
    static final int REFUSED = 126;

    static final String ALLOWED = "this server runs only rsync (over ssh), scp, sha256sum and md5sum; "
            + "use sftp, scp, rsync or sshfs";

    private final Function<String, ServedTree> trees;
    private final Sandbox sandbox;
    private final ServeAccounts accounts;

    /**
     * @param trees    the tree of a user name (the user is authenticated, so it is owner or reader)
     * @param sandbox  where rsync runs
     * @param accounts whose access rsync runs with, per kind of user
     */
    ServeCommands(Function<String, ServedTree> trees, Sandbox sandbox, ServeAccounts accounts) {
        this.trees = trees;
        this.sandbox = sandbox;
        this.accounts = accounts;
    }

    @Override
    public Command createShell(ChannelSession channel) {
        return new SessionCommand.Refusal("kiln-agent: no shell here; " + ALLOWED, 1);
    }

    @Override
    public Command createCommand(ChannelSession channel, String command) {
        String user = channel.getSession().getUsername();
        UserKind kind = UserKind.ofUserName(user).orElseThrow();
        List<String> words;
        try {
            words = CommandWords.split(command);
        } catch (IllegalArgumentException e) {
            return new SessionCommand.Refusal("kiln-agent: " + e.getMessage() + "; " + ALLOWED, REFUSED);
        }
        if (words.isEmpty()) {
            return new SessionCommand.Refusal("kiln-agent: empty command; " + ALLOWED, REFUSED);
        }
        String program = words.get(0);
        switch (program) {
            case "rsync" -> {
                if (!sandbox.available()) {
                    return new SessionCommand.Refusal("kiln-agent: rsync is not available: " + sandbox.why(), REFUSED);
                }
                try {
                    ServedTree tree = trees.apply(user);
                    RsyncPolicy.Decision decision = RsyncPolicy.check(kind, tree, words);
                    RsyncPolicy.requireInside(tree, decision.paths(), accounts.of(kind));
                    return new RsyncCommand(decision, tree, sandbox, accounts.of(kind));
                } catch (RsyncPolicy.Refused e) {
                    return new SessionCommand.Refusal("kiln-agent: rsync refused: " + e.getMessage(), REFUSED);
                }
            }
            case "scp" -> {
                try {
                    return ServedScp.create(channel, words);
                } catch (ServedScp.Usage e) {
                    return new SessionCommand.Refusal("kiln-agent: " + e.getMessage(), REFUSED);
                }
            }
            case "sha256sum", "md5sum" -> {
                return new WithFileSystem(fs -> new ChecksumCommand(program, words.subList(1, words.size()), fs));
            }
            default -> {
                return new SessionCommand.Refusal("kiln-agent: command not allowed: " + printable(program) + "; " + ALLOWED,
                        REFUSED);
            }
        }
    }

    private static String printable(String s) {
        String t = s.replaceAll("[^\\x20-\\x7e]", "?");
        return t.length() > 64 ? t.substring(0, 64) + "..." : t;
    }

    /**
     * A command that needs the session's file system: MINA hands it over through
     * {@link FileSystemAware} before starting the command.
     */
    private static final class WithFileSystem implements Command, FileSystemAware {
        private final Function<FileSystem, SessionCommand> make;
        private SessionCommand command;
        private InputStream in;
        private OutputStream out;
        private OutputStream err;
        private ExitCallback exit;

        WithFileSystem(Function<FileSystem, SessionCommand> make) {
            this.make = make;
        }

        @Override
        public void setFileSystemFactory(FileSystemFactory factory, SessionContext session) throws IOException {
            setFileSystem(factory.createFileSystem(session));
        }

        @Override
        public void setFileSystem(FileSystem fs) {
            command = make.apply(fs);
        }

        @Override
        public void setInputStream(InputStream in) {
            this.in = in;
        }

        @Override
        public void setOutputStream(OutputStream out) {
            this.out = out;
        }

        @Override
        public void setErrorStream(OutputStream err) {
            this.err = err;
        }

        @Override
        public void setExitCallback(ExitCallback callback) {
            this.exit = callback;
        }

        @Override
        public void start(ChannelSession channel, Environment env) throws IOException {
            if (command == null) {
                throw new IOException("no file system for the session");
            }
            command.setInputStream(in);
            command.setOutputStream(out);
            command.setErrorStream(err);
            command.setExitCallback(exit);
            command.start(channel, env);
        }

        @Override
        public void destroy(ChannelSession channel) throws Exception {
            if (command != null) {
                command.destroy(channel);
            }
        }
    }
}
