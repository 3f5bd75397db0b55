package dev.kiln.agent.service;

import dev.kiln.agent.config.ServiceSettings;

import java.time.Instant;

/**
 * A service as Status reports it, at one moment.
 *
 * @param settings  what is configured
 * @param state     where it is
 * @param pid       its process (group leader), 0 when not running
 * @param restarts  how many times it was started again after exiting
 * @param portOpen  whether its port accepted a TCP connection on 127.0.0.1 or ::1 just now
 * @param detail    why it is restarting or failed, or empty
 * @param since     when it entered its state
 * @param logSize   bytes in its log over its whole life
 */
public record ServiceStatus(ServiceSettings settings, ServiceState state, long pid, int restarts, boolean portOpen,
                            String detail, Instant since, long logSize) {
}
