package dev.kiln.agent.serve;

import dev.kiln.agent.lease.BusySource;
import dev.kiln.agent.lease.DrainParticipant;
import jakarta.inject.Singleton;

import java.time.Duration;
import java.util.List;

/**
 * Serving's part in the instance's life: an open SSH session (an sftp client, an sshfs mount, a
 * running rsync, an {@code ssh -L}) and an open forwarded connection keep the agent from being
 * idle, and draining closes every forwarded connection and session before the volumes they read
 * from are unmounted.
 */
@Singleton
public final class ServingActivity implements DrainParticipant, BusySource {

    private final Serving serving;

    public ServingActivity(Serving serving) {
        this.serving = serving;
    }

    @Override
    public String step() {
        return "close forwarded connections and SSH sessions";
    }

    @Override
    public int order() {
        return 40;
    }

    @Override
    public String drain(Duration budget) {
        return serving.server().map(s -> {
            // Forwards first: each is a channel of a session, and the count says what was cut.
            int forwards = s.closeForwards();
            int n = s.closeSessions();
            s.stop(); // no new logins or forwards while the instance ends
            return "closed " + forwards + " forwarded connection" + (forwards == 1 ? "" : "s") + " and " + n + " session"
                    + (n == 1 ? "" : "s") + ", server stopped";
        }).orElse("not serving");
    }

    @Override
    public List<String> busyReasons() {
        List<String> reasons = new java.util.ArrayList<>();
        serving.server().ifPresent(s -> {
            List<String> forwards = s.openForwardTargets();
            if (!forwards.isEmpty()) {
                reasons.add(forwards.size() + " forwarded connection" + (forwards.size() == 1 ? "" : "s") + " open (to "
                        + String.join(", ", new java.util.TreeSet<>(forwards)) + ")");
            }
            int n = s.openSessions();
            if (n > 0) {
                reasons.add(n + " SSH session" + (n == 1 ? "" : "s") + " open");
            }
        });
        return reasons;
    }
}
