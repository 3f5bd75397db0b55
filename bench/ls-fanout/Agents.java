import dev.kiln.agent.Main;
import dev.kiln.agent.api.GrpcServerEventLoops;
import dev.kiln.agent.config.AgentMode;
import dev.kiln.agent.instance.InstanceIdentity;
import dev.kiln.agent.startup.AgentDefaults;
import dev.kiln.agent.startup.Console;
import dev.kiln.agent.startup.DegradedMode;
import dev.kiln.agent.status.Problems;
import dev.kiln.startup.JarServices;
import dev.kiln.startup.NettyProperties;
import dev.kiln.tls.GrpcTls;
import dev.kiln.tls.PemMaterial;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.micronaut.context.ApplicationContext;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One real kiln-agent (its application context, from the agent.yml in MICRONAUT_CONFIG_FILES, as
 * the local provider starts it) that also answers on many loopback addresses, each with its own
 * certificate from the fleet CA: every extra listener is a gRPC server with the agent's own
 * services (the AgentGrpcService and EnrollmentGrpcService beans), event loops and handshake log
 * (GrpcServerEventLoops), and a server TLS context made by GrpcTls, as the agent's own listener
 * has. A "silent" line is a black-holed agent instead: a TCP listener that accepts connections
 * and never reads or writes, so a client's TLS handshake waits until its deadline.
 *
 * Usage: java -cp kiln-agent.jar:DIR Agents LISTENERS OUT
 *   LISTENERS: lines "serve HOST CERT_DIR" (CERT_DIR holds agent.crt, agent.key, fleet-ca.crt)
 *              or "silent HOST"; each listener binds HOST on a free port
 *   OUT: "HOST PORT" for each listener, in order, written once all are bound; then the file OUT.ready
 * Runs until TERM.
 */
public class Agents {

    public static void main(String[] args) throws Exception {
        NettyProperties.applyDefaults();
        JarServices.install(Main.UNUSED_MICRONAUT_PACKAGES);
        // As AgentLauncher starts a local-mode agent (kiln.instance-id from agent.yml names it).
        ApplicationContext context = AgentDefaults.contextBuilder().build();
        String id = context.getEnvironment().start().getProperty("kiln.instance-id", String.class).orElse("local-bench");
        context.registerSingleton(new InstanceIdentity(AgentMode.LOCAL, id, "", Optional.empty()))
                .registerSingleton(Problems.none())
                .registerSingleton(new DegradedMode(AgentMode.LOCAL, false, false))
                .registerSingleton(new Console(System.err));
        context.start();
        GrpcServerEventLoops loops = context.getBean(GrpcServerEventLoops.class);
        Collection<BindableService> services = context.getBeansOfType(BindableService.class);
        if (services.isEmpty()) {
            throw new IllegalStateException("the agent's context has no gRPC services");
        }

        List<Server> servers = new ArrayList<>();
        List<ServerSocket> silent = new ArrayList<>();
        List<Socket> held = new ArrayList<>();
        StringBuilder out = new StringBuilder();
        for (String line : Files.readAllLines(Path.of(args[0]))) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 2) {
                continue;
            }
            int port;
            if (f[0].equals("serve")) {
                Path dir = Path.of(f[2]);
                var ssl = GrpcTls.server(
                        PemMaterial.pkcs8Key(Files.readAllBytes(dir.resolve("agent.key")), "agent.key").orElseThrow(),
                        PemMaterial.certificates(Files.readAllBytes(dir.resolve("agent.crt")), "agent.crt"),
                        PemMaterial.certificates(Files.readAllBytes(dir.resolve("fleet-ca.crt")), "fleet-ca.crt"));
                NettyServerBuilder b = loops.apply(NettyServerBuilder.forAddress(new InetSocketAddress(f[1], 0))).sslContext(ssl);
                services.forEach(b::addService);
                Server s = b.build().start();
                servers.add(s);
                port = s.getPort();
            } else if (f[0].equals("silent")) {
                ServerSocket ss = new ServerSocket();
                ss.bind(new InetSocketAddress(f[1], 0), 64);
                silent.add(ss);
                Thread t = new Thread(() -> {
                    try {
                        while (true) {
                            Socket s = ss.accept();
                            synchronized (held) {
                                held.add(s); // kept open, never read or written
                            }
                        }
                    } catch (IOException e) {
                        // closed at exit
                    }
                }, "silent-" + f[1]);
                t.setDaemon(true);
                t.start();
                port = ss.getLocalPort();
            } else {
                throw new IllegalArgumentException("listener line '" + line + "': not serve or silent");
            }
            out.append(f[1]).append(' ').append(port).append('\n');
        }
        Path outFile = Path.of(args[1]);
        Files.writeString(outFile, out);
        Files.writeString(Path.of(args[1] + ".ready"), "");

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            servers.forEach(Server::shutdownNow);
            for (Server s : servers) {
                try {
                    s.awaitTermination(2, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            for (ServerSocket ss : silent) {
                try {
                    ss.close();
                } catch (IOException ignored) {
                    // exiting
                }
            }
            context.close();
            loops.shutdown();
            stopped.countDown();
        }, "agents-shutdown"));
        stopped.await();
    }
}
