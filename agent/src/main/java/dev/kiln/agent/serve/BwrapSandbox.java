package dev.kiln.agent.serve;

import dev.kiln.agent.fs.FsAccess;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The sandbox made of bubblewrap ({@code bwrap}): new mount, pid, network, IPC and UTS namespaces
 * whose root holds only the system's programs ({@code /usr}, read-only), an empty {@code /tmp},
 * a minimal {@code /dev} and the user's areas at {@code /outputs} and {@code /sources}; no
 * {@code /proc}, whose {@code self/root} would lead a path back to the sandbox's own root. When
 * the agent is root, the program runs as the given account with no capabilities
 * ({@code setpriv}), so it could not write even where a mount allowed it unless that account may;
 * otherwise it runs as the agent's user in a user namespace.
 */
public final class BwrapSandbox implements Sandbox {

    private final String bwrap;

    public BwrapSandbox() {
        this.bwrap = find("bwrap");
    }

    @Override
    public boolean available() {
        return bwrap != null;
    }

    @Override
    public String why() {
        return bwrap == null ? "bubblewrap (bwrap) is not installed on the agent (apt-get install bubblewrap)" : "";
    }

    @Override
    public Process start(List<String> argv, List<Mount> mounts, FsAccess runAs) throws IOException {
        if (bwrap == null) {
            throw new IOException(why());
        }
        boolean root = runAs.uid() >= 0;
        List<String> cmd = new ArrayList<>(List.of(bwrap, "--die-with-parent", "--new-session",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"));
        if (!root) {
            cmd.add("--unshare-user");
        }
        cmd.addAll(List.of("--ro-bind", "/usr", "/usr"));
        for (String link : List.of("bin", "sbin", "lib", "lib64", "lib32")) {
            Path p = Path.of("/" + link);
            if (Files.isSymbolicLink(p)) {
                cmd.addAll(List.of("--symlink", Files.readSymbolicLink(p).toString(), "/" + link));
            } else if (Files.isDirectory(p)) {
                cmd.addAll(List.of("--ro-bind", "/" + link, "/" + link));
            }
        }
        cmd.addAll(List.of("--dev", "/dev", "--tmpfs", "/tmp"));
        for (Mount m : mounts) {
            cmd.addAll(List.of(m.writable() ? "--bind" : "--ro-bind", m.real().toString(), m.at()));
        }
        cmd.addAll(List.of("--chdir", "/", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LC_ALL", "C",
                "--setenv", "HOME", "/tmp"));
        if (root) {
            cmd.addAll(List.of("--cap-add", "CAP_SETUID,CAP_SETGID", "--", "setpriv", "--reuid=" + runAs.uid(),
                    "--regid=" + runAs.gid(), "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                    "--no-new-privs", "--"));
        } else {
            cmd.add("--");
        }
        cmd.addAll(argv);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().clear();
        pb.environment().put("PATH", "/usr/bin:/bin");
        return pb.start();
    }

    private static String find(String name) {
        for (String dir : List.of("/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin")) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return p.toString();
            }
        }
        return null;
    }
}
