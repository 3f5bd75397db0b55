package dev.kiln.controller.client;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

/**
 * Where an agent listens.
 *
 * @param host       host name or IP address (IPv6 without brackets)
 * @param port       TCP port
 * @param serverName the name to verify the agent's certificate against; null means {@code host}
 */
public record AgentEndpoint(String host, int port, String serverName) {

    /** Parses {@code HOST:PORT} or {@code [IPV6]:PORT}. */
    public static AgentEndpoint parse(String text) {
        String t = text.trim();
        int colon = t.lastIndexOf(':');
        if (colon <= 0 || colon == t.length() - 1) {
            throw new KilnException(ExitCodes.USAGE, "agent address '" + text + "' must be HOST:PORT, e.g. 127.0.0.1:7443");
        }
        String host = t.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = Integer.parseInt(t.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new KilnException(ExitCodes.USAGE, "agent address '" + text + "': port is not a number");
        }
        if (port < 1 || port > 65535) {
            throw new KilnException(ExitCodes.USAGE, "agent address '" + text + "': port must be 1-65535");
        }
        return new AgentEndpoint(host, port, null);
    }

    public AgentEndpoint withServerName(String name) {
        return new AgentEndpoint(host, port, name);
    }

    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
