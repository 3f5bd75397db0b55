package dev.kiln.agent.lease;

import dev.kiln.os.OsCommand;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.List;

/**
 * {@code systemctl poweroff}: a clean shutdown through systemd. Instances are launched with
 * InstanceInitiatedShutdownBehavior=terminate, so this terminates them. Never {@code halt}.
 */
public final class SystemdPowerControl implements PowerControl {

    private static final Logger LOG = LoggerFactory.getLogger(SystemdPowerControl.class);

    /** The command this runs. */
    public static final List<String> COMMAND = List.of("systemctl", "poweroff");
    private static final Duration LIMIT = Duration.ofSeconds(60);

    @Override
    public void powerOff() {
        try {
            OsCommand.Result r = OsCommand.run(LIMIT, COMMAND);
            if (!r.ok()) {
                LOG.error("systemctl poweroff failed ({}); the backstop timer will end the instance", r.said());
            }
        } catch (InterruptedIOException e) {
            // the agent is stopping
        } catch (IOException e) {
            LOG.error("cannot run systemctl poweroff ({}); the backstop timer will end the instance", e.toString());
        }
    }

    @Override
    public String describe() {
        return String.join(" ", COMMAND);
    }
}
