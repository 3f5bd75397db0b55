package dev.kiln.agent.lease;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code systemctl poweroff}: a clean shutdown through systemd. Instances are launched with
 * InstanceInitiatedShutdownBehavior=terminate, so this terminates them. Never {@code halt}.
 */
public final class SystemdPowerControl implements PowerControl {

    private static final Logger LOG = LoggerFactory.getLogger(SystemdPowerControl.class);

    /** The command this runs. */
    public static final List<String> COMMAND = List.of("systemctl", "poweroff");

    @Override
    public void powerOff() {
        try {
            Process p = new ProcessBuilder(COMMAND).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                LOG.error("systemctl poweroff failed ({}); the backstop timer will end the instance", out.strip());
            }
        } catch (IOException e) {
            LOG.error("cannot run systemctl poweroff ({}); the backstop timer will end the instance", e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String describe() {
        return String.join(" ", COMMAND);
    }
}
