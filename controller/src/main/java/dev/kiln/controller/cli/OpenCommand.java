package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentClient;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.StatusResponse;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code kiln open}: the link of an instance's service, opened in $BROWSER when one is set. */
@TimeoutMixin.Default(what = "How long to wait for the agent's answer")
@Command(name = "open", mixinStandardHelpOptions = true,
        description = {"Print the link of an instance's service, http://HOST:PORT/PATH (HOST by the --address rule, as for",
                "its agent), and open it with $BROWSER when that is set (a command, or several separated by ':', tried",
                "in turn; %s in one stands for the link). NAME may be left out when the instance has one service.",
                "Examples:",
                "  kiln open local-1a2b3c4d",
                "  kiln open i-0123456789abcdef0 web"})
public class OpenCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Mixin
    FleetMixin fleetOptions;

    @Mixin
    TimeoutMixin timeout;

    @Parameters(index = "0", paramLabel = "INSTANCE", description = "The instance (local-... or i-...).")
    String instance;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME", description = "The service (default: its only one).")
    String name;

    @Override
    public Integer call() {
        if (!AgentMixin.isInstanceId(instance)) {
            throw new KilnException(ExitCodes.USAGE, "'" + instance + "' is not an instance id such as local-1a2b3c4d or"
                    + " i-0123456789abcdef0 (`kiln ls` lists them)");
        }
        Fleet fleet = fleetOptions.fleet(fleets, instance);
        ManagedInstance m = fleet.get(instance);
        if (m.state().equals("terminated")) {
            throw new KilnException(ExitCodes.NOT_FOUND, fleet.ended(instance).map(e -> e.summary()).orElse(instance
                    + " is terminated") + "; its services ended with it");
        }
        AgentEndpoint endpoint = fleetOptions.endpoint(context, m);
        if (endpoint == null) {
            throw new KilnException(ExitCodes.UNREACHABLE, instance + " has no " + context.settings().get("address", null)
                    .orElse("auto") + " address (it is " + m.state() + "); use --address private (through a VPN or bastion)"
                    + " or give it a public IP");
        }
        StatusResponse status;
        try (AgentClient client = clients.client(endpoint, timeout.get(context))) {
            status = client.status();
        }
        Service service = choose(status);
        String url = ServiceLinks.url(endpoint.host(), service);
        context.out().println(url);
        context.out().flush();
        if (!ServiceLinks.up(service)) {
            context.err().println("kiln: " + service.getName() + " is " + ServiceLinks.state(service) + " and its port "
                    + service.getPort() + " is " + (service.getPortOpen() ? "open" : "not open yet")
                    + (service.getDetail().isEmpty() ? "" : " (" + service.getDetail() + ")") + "; `kiln status --agent "
                    + instance + "` shows it, `kiln logs --agent " + instance + " service:" + service.getName() + "` its output");
        }
        String browser = context.env().get("BROWSER").orElse("").strip();
        if (!browser.isEmpty()) {
            browse(browser, url);
        }
        return ExitCodes.OK;
    }

    /** The named service, or the only one; NOT_FOUND or USAGE naming the services there are otherwise. */
    private Service choose(StatusResponse status) {
        List<Service> services = status.getServicesList();
        if (services.isEmpty()) {
            throw new KilnException(ExitCodes.NOT_FOUND, instance + " has no services (launch with --service NAME:PORT[/PATH][=COMMAND])");
        }
        if (name == null) {
            if (services.size() > 1) {
                throw new KilnException(ExitCodes.USAGE, instance + " has " + services.size() + " services: "
                        + String.join(", ", ServiceLinks.names(status)) + "; name one, e.g. `kiln open " + instance + " "
                        + services.get(0).getName() + "`");
            }
            return services.get(0);
        }
        return services.stream().filter(s -> s.getName().equals(name)).findFirst().orElseThrow(() -> new KilnException(
                ExitCodes.NOT_FOUND, instance + " has no service '" + name + "' (its services: "
                + String.join(", ", ServiceLinks.names(status)) + ")"));
    }

    /**
     * Runs $BROWSER with the link: each ':'-separated command in turn until one succeeds. The link
     * is passed as an argument to /bin/sh, never pasted into the command's text.
     */
    private void browse(String browser, String url) {
        String last = null;
        for (String command : browser.split(":")) {
            if (command.isBlank()) {
                continue;
            }
            String script = command.contains("%s") ? command.replace("%s", "\"$1\"") : command + " \"$1\"";
            ProcessBuilder pb = new ProcessBuilder("/bin/sh", "-c", script, "kiln-open", url);
            if (context.terminal()) {
                pb.inheritIO(); // a terminal browser (w3m, lynx) takes over the terminal
            } else {
                // Our stdout carries only the link; what the browser prints goes to stderr.
                pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).redirectErrorStream(true);
            }
            try {
                Process p = pb.start();
                if (!context.terminal()) {
                    try (InputStream in = p.getInputStream()) {
                        in.transferTo(context.err());
                    }
                }
                int exit = p.waitFor();
                if (exit == 0) {
                    return;
                }
                last = command.strip() + " exited with status " + exit;
            } catch (IOException e) {
                last = command.strip() + " could not run (" + e.getMessage() + ")";
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        if (last != null) {
            throw new KilnException(ExitCodes.FAILURE, "$BROWSER: " + last + "; the link is " + url);
        }
    }
}
