package dev.kiln.agent.serve;

import dev.kiln.agent.lease.BusySource;
import dev.kiln.agent.lease.DrainParticipant;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.List;

/**
 * Serving's part in the instance's life: an open SSH session (an sftp client, an sshfs mount, a
 * running rsync) keeps the agent from being idle, and draining closes every session before the
 * volumes they read from are unmounted.
 */
@Singleton
public final class ServingActivity implements DrainParticipant, BusySource {

    private final Serving serving;

    public ServingActivity(Serving serving) {
        this.serving = serving;
    }

    @Override
    public String step() {
        return "close SSH sessions";
    }

    @Override
    public int order() {
        return 40;
    }

    @Override
    public String drain(Duration budget) {
        return serving.server().map(s -> {
            int n = s.closeSessions();
            s.stop(); // no new logins while the instance ends
            return "closed " + n + " session" + (n == 1 ? "" : "s") + ", server stopped";
        }).orElse("not serving");
    }

    @Override
    public List<String> busyReasons() {
        int n = serving.server().map(SshServer::openSessions).orElse(0);
        return n == 0 ? List.of() : List.of(n + " SSH session" + (n == 1 ? "" : "s") + " open");
    }
}
