package dev.kiln.controller.cli;

import dev.kiln.controller.fleet.Ec2Clients;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.local.LocalAgent;
import dev.kiln.controller.local.LocalProvider;
import io.micronaut.context.annotation.Bean;
import jakarta.inject.Singleton;
import software.amazon.awssdk.services.ec2.Ec2Client;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Where a command's instances live: the local provider, the local agent of `kiln up --local`, or
 * EC2. Its EC2 clients are made on first use (most commands never need one) and closed when the
 * command ends, with the Micronaut context.
 */
@Singleton
@Bean(preDestroy = "close")
public class Fleets implements AutoCloseable {

    private final Context context;
    private final Map<List<Optional<String>>, Ec2Client> ec2 = new HashMap<>();

    public Fleets(Context context) {
        this.context = context;
    }

    public Context context() {
        return context;
    }

    /** The local provider, narrating on this command's stderr. */
    public LocalProvider local() {
        return new LocalProvider(context.paths()).narrate(this::narrate);
    }

    /** The agent `kiln up --local` runs. */
    public LocalAgent localAgent() {
        return new LocalAgent(context.paths());
    }

    /** EC2, in the region and at the endpoint the settings name now, narrating on this command's stderr. */
    public Ec2Fleet ec2() {
        return new Ec2Fleet(ec2Client()).narrate(this::narrate);
    }

    /** The fleet whose instance id this is (local-... or i-...), or null when it is neither. */
    public Fleet owning(String instanceId) {
        if (instanceId != null && LocalProvider.isInstanceId(instanceId)) {
            return local();
        }
        if (instanceId != null && Ec2Fleet.isInstanceId(instanceId)) {
            return ec2();
        }
        return null;
    }

    /** One client per region and endpoint (a --region flag changes the settings after the first look-up). */
    private synchronized Ec2Client ec2Client() {
        var settings = context.settings();
        return ec2.computeIfAbsent(List.of(settings.get("region", null), settings.get("ec2-endpoint", null)),
                k -> Ec2Clients.create(settings));
    }

    private void narrate(String s) {
        context.err().println("kiln: " + s);
    }

    @Override
    public synchronized void close() {
        List<Ec2Client> clients = new ArrayList<>(ec2.values());
        ec2.clear();
        clients.forEach(Ec2Client::close);
    }
}
