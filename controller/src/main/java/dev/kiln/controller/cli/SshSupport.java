package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.ssh.SshTarget;
import dev.kiln.proto.agent.v1.StatusResponse;

/** What ssh-config, pull and push share: INSTANCE resolution and the agent's SSH target from its Status. */
final class SshSupport {

    private SshSupport() {
    }

    /** True when a positional word names an agent: {@code local} or {@code HOST:PORT}. */
    static boolean isInstance(String word) {
        return word != null && (word.equals("local") || AgentMixin.isInstanceId(word)
                || word.matches("\\[?[A-Za-z0-9.:-]+\\]?:\\d+"));
    }

    /** The SSH target of INSTANCE ({@code local}, {@code HOST:PORT}) or, when null, of --agent / the local agent. */
    static SshTarget target(Context context, AgentClients clients, Fleets fleets, AgentMixin agent, String instance, String user, java.util.function.Supplier<java.time.Duration> timeout) {
        return resolve(context, clients, fleets, agent, instance, user, timeout).target();
    }

    /** An agent's SSH target and the Status it came from (services, ports that may be forwarded). */
    record Resolved(SshTarget target, StatusResponse status) {
    }

    /** As {@link #target}, with the agent's Status. */
    static Resolved resolve(Context context, AgentClients clients, Fleets fleets, AgentMixin agent, String instance, String user, java.util.function.Supplier<java.time.Duration> timeout) {
        AgentEndpoint endpoint;
        boolean local;
        if ("local".equals(instance)) {
            endpoint = fleets.localAgent().endpoint().orElseThrow(() -> new KilnException(ExitCodes.CONFIG,
                    "no local agent started; run `kiln up --local`"));
            local = true;
        } else if (instance != null) {
            endpoint = AgentMixin.isInstanceId(instance) ? AgentMixin.instanceEndpoint(fleets, instance)
                    : AgentEndpoint.parse(instance);
            if (agent.serverName != null) {
                endpoint = endpoint.withServerName(agent.serverName);
            }
            local = false;
        } else {
            endpoint = agent.resolve(fleets);
            local = fleets.localAgent().endpoint().map(endpoint::equals).orElse(false)
                    && context.settings().get("agent", agent.agent).isEmpty();
        }
        StatusResponse status;
        try (AgentClient client = clients.client(endpoint, timeout.get())) {
            status = client.status();
        }
        // A managed instance is named by its id: several local instances share 127.0.0.1.
        String id = instance != null ? instance : context.settings().get("agent", agent.agent).orElse(null);
        String alias = local ? "kiln-local" : id != null && AgentMixin.isInstanceId(id) ? "kiln-" + id : null;
        return new Resolved(SshTarget.from(status, endpoint, alias, SshTarget.user(user), context.paths().sshKey(),
                context.paths().knownHosts()), status);
    }

    /** A word as a POSIX shell reads it back, for commands printed as hints. */
    static String shellWord(String s) {
        return s.matches("[A-Za-z0-9_./:@,+=-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
    }
}
