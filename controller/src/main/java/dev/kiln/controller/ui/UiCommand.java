package dev.kiln.controller.ui;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.cli.AgentClients;
import dev.kiln.controller.cli.Context;
import dev.kiln.controller.cli.Durations;
import dev.kiln.controller.cli.Fleets;
import jakarta.inject.Inject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code kiln ui}: the fleet as a web page, served by this process until it is stopped. */
@Command(name = "ui", mixinStandardHelpOptions = true,
        description = {"Serve a dashboard of the fleet at http://127.0.0.1:8421 until Ctrl-C: instances with their",
                "labels, agent state, build, lease and service links, refreshed live; Extend, Stop, Stop all,",
                "a Launch form from config.yml's templates, logs followed live, snapshots by role. It prints a URL",
                "with a token for this run (the page refuses requests without it) and opens it in $BROWSER",
                "(through a file only you can read: the token stays out of the browser's command line).",
                "It talks to the provider and agents as the other commands do and keeps no state. docs/ui.md",
                "says more, and how to share it with a team (an SSH tunnel). Examples:",
                "  kiln ui",
                "  kiln ui --no-browser --port 9000"})
public class UiCommand implements Callable<Integer> {

    @Inject
    Context context;

    @Inject
    Fleets fleets;

    @Inject
    AgentClients clients;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8421", description = "TCP port (default: ${DEFAULT-VALUE}; 0: any free port).")
    int port;

    @Option(names = "--bind", paramLabel = "ADDRESS", description = {"Address to listen on (default: 127.0.0.1, this machine only).",
            "Any other address lets the network reach the page; see docs/ui.md before you do."})
    String bind;

    @Option(names = "--no-browser", description = "Print the URL only; do not open $BROWSER.")
    boolean noBrowser;

    @Option(names = "--agent-timeout", paramLabel = "DURATION", defaultValue = "3s",
            description = "How long each refresh waits for each agent (default: ${DEFAULT-VALUE}).")
    String agentTimeout;

    @Option(names = "--provider", paramLabel = "local|ec2",
            description = "Where instances live: local (the default) or ec2 (env KILN_PROVIDER, config.yml provider).")
    String provider;

    @Option(names = "--region", paramLabel = "REGION", description = "AWS region (default: KILN_REGION, config.yml, then AWS_REGION / the AWS profile).")
    String region;

    @Option(names = "--address", paramLabel = "public|private|auto",
            description = "Which address reaches agents and services: public, private or auto (default; env KILN_ADDRESS).")
    String address;

    @Override
    public Integer call() throws InterruptedException {
        if (port < 0 || port > 65535) {
            throw new KilnException(ExitCodes.USAGE, "--port " + port + " is not a TCP port (1-65535, or 0 for any free one)");
        }
        String host = bind == null || bind.equals("localhost") ? "127.0.0.1" : bind;
        InetAddress address;
        try {
            // IP literals only: a name would be looked up in DNS, and may change under the server.
            if (!host.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:.%a-z]*:[0-9A-Fa-f:.%a-z]*")) {
                throw new UnknownHostException(host);
            }
            address = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new KilnException(ExitCodes.USAGE, "--bind " + host + " is not an IP address of this machine (e.g. 127.0.0.1,"
                    + " or 0.0.0.0 for every address)");
        }
        if (!address.isLoopbackAddress()) {
            context.err().println("kiln ui: WARNING: listening on " + host + ", not loopback: anyone who can reach this machine"
                    + " and learns the URL can stop and launch instances, over plain HTTP; docs/ui.md shows how to share the"
                    + " dashboard through an SSH tunnel instead");
        }
        Map<String, String> overrides = settings();
        Dashboard dashboard = new Dashboard(context, fleets, clients, Durations.parse(agentTimeout), overrides);
        UiAccess access = UiAccess.random(host);
        UiAudit audit = new UiAudit(context.err(), context.clock());
        UiServer server;
        try {
            server = UiServer.start(host, port, dashboard, access, audit);
        } catch (RuntimeException e) {
            dashboard.close();
            if (context.env().get("KILN_DEBUG").isPresent()) {
                e.printStackTrace(context.err());
            }
            throw new KilnException(ExitCodes.FAILURE, "cannot serve on " + host + ":" + port + " (" + rootCause(e)
                    + "); is another `kiln ui` running? Give another --port, or --port 0 for any free one", e);
        }
        try (server; dashboard) {
            String shown = address.isAnyLocalAddress() ? "127.0.0.1" : host.contains(":") ? "[" + host + "]" : host;
            String url = "http://" + shown + ":" + server.port() + "/?token=" + access.token();
            context.err().println("kiln ui: the " + dashboard.provider() + " fleet's dashboard; open this URL (its token is"
                    + " this run's), Ctrl-C stops it:");
            context.out().println(url);
            context.out().flush();
            Path opener = null;
            try {
                if (!noBrowser) {
                    opener = opener(url);
                    openBrowser(opener.toUri().toString());
                }
                new CountDownLatch(1).await(); // until Ctrl-C ends the process (or, in tests, the thread is interrupted)
            } finally {
                if (opener != null) {
                    Files.deleteIfExists(opener);
                    Files.deleteIfExists(opener.getParent());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException e) {
            throw new KilnException(ExitCodes.FAILURE, "cannot write the page that opens the dashboard: " + e.getMessage(), e);
        }
        return ExitCodes.OK;
    }

    /**
     * A page only this user can read that sends the browser to {@code url}: the browser's command
     * line, which every local user sees in ps, then names this file and not the token. It lives in
     * a 0700 directory under $XDG_RUNTIME_DIR/kiln (else the state directory) while `kiln ui` runs.
     */
    private Path opener(String url) throws IOException {
        Path base = context.env().get("XDG_RUNTIME_DIR").filter(d -> !d.isEmpty()).map(d -> Path.of(d, "kiln"))
                .orElse(context.paths().stateDir());
        FileAttribute<Set<PosixFilePermission>> ownerDir = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
        if (!Files.isDirectory(base)) {
            Files.createDirectories(base, ownerDir);
        }
        Path dir = Files.createTempDirectory(base, "ui-", ownerDir);
        Path page = Files.createFile(dir.resolve("open.html"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        // Ctrl-C ends the JVM without the finally above: its exit hook deletes them (the page first).
        dir.toFile().deleteOnExit();
        page.toFile().deleteOnExit();
        String u = Html.esc(url);
        Files.writeString(page, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                + "<meta http-equiv=\"refresh\" content=\"0;url=" + u + "\"><title>kiln ui</title></head>\n"
                + "<body><p>Opening <a href=\"" + u + "\">the kiln ui dashboard</a>.</p></body></html>\n");
        return page;
    }

    /** --provider, --region and --address for the page and for every command it runs, as KILN_* variables. */
    private Map<String, String> settings() {
        Map<String, String> overrides = new LinkedHashMap<>();
        if (provider != null) {
            if (!provider.equals("local") && !provider.equals("ec2")) {
                throw new KilnException(ExitCodes.USAGE, "provider '" + provider + "' is not local or ec2");
            }
            context.overrideSetting("provider", provider);
            overrides.put("KILN_PROVIDER", provider);
        }
        if (region != null) {
            context.overrideSetting("region", region);
            overrides.put("KILN_REGION", region);
        }
        if (address != null) {
            context.overrideSetting("address", address);
            overrides.put("KILN_ADDRESS", address);
        }
        return overrides;
    }

    /** $BROWSER (a command, or several separated by ':', as in Python's webbrowser), else xdg-open or open, on {@code url}. */
    private void openBrowser(String url) {
        List<String> candidates = new ArrayList<>();
        context.env().get("BROWSER").ifPresent(b -> candidates.addAll(List.of(b.split(":"))));
        candidates.add("xdg-open");
        candidates.add("open");
        for (String c : candidates) {
            if (c.isBlank()) {
                continue;
            }
            try {
                List<String> cmd = new ArrayList<>(List.of(c.trim().split("\\s+")));
                cmd.add(url);
                new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                return;
            } catch (IOException e) {
                // not installed: the next one
            }
        }
        context.err().println("kiln ui: no browser to open (set BROWSER); open the URL above yourself");
    }

    private static String rootCause(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }
}
