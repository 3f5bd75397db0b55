package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.config.ControllerSettings;
import dev.kiln.controller.config.KilnPaths;
import dev.kiln.controller.fleet.Ec2Clients;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.local.LocalProvider;
import picocli.CommandLine.Option;
import software.amazon.awssdk.services.ec2.Ec2Client;

/** Options shared by the commands that manage instances: which provider, region and address. */
public class FleetMixin {

    @Option(names = "--provider", paramLabel = "local|ec2",
            description = "Where instances live: local (agents as processes on this machine; the default) or ec2 (env KILN_PROVIDER, config.yml provider).")
    String provider;

    @Option(names = "--region", paramLabel = "REGION", description = "AWS region (default: KILN_REGION, config.yml, then AWS_REGION / the AWS profile).")
    String region;

    @Option(names = "--address", paramLabel = "public|private|auto",
            description = "Which address reaches agents: public, private (e.g. through a VPN or bastion), or auto: public if the instance has one (default; env KILN_ADDRESS).")
    String address;

    /** An EC2 client for these options. */
    Ec2Client client(Context context) {
        if (region != null) {
            context.overrideSetting("region", region);
        }
        return Ec2Clients.create(context.settings());
    }

    /** Where an instance's agent listens, by the address rule. */
    AgentEndpoint endpoint(Context context, ManagedInstance m) {
        String rule = context.settings().get("address", address).orElse("auto");
        return m.endpoint(rule);
    }

    /** The provider these options (or KILN_PROVIDER, or config.yml) name: local unless told otherwise. */
    String providerName(Context context) {
        String name = context.settings().get("provider", provider).orElse("local");
        if (!name.equals("local") && !name.equals("ec2")) {
            throw new KilnException(ExitCodes.USAGE, "provider '" + name + "' is not local or ec2");
        }
        return name;
    }

    Fleet fleet(Context context) {
        return providerName(context).equals("ec2") ? ec2(context) : local(context);
    }

    /** The local provider, narrating on this command's stderr. */
    static LocalProvider local(Context context) {
        return new LocalProvider(context.paths()).narrate(s -> context.err().println("kiln: " + s));
    }

    /** The fleet an instance id belongs to: local-... is the local provider's, i-... EC2's. */
    Fleet fleet(Context context, String instanceId) {
        if (region != null) {
            context.overrideSetting("region", region);
        }
        if (instanceId != null && LocalProvider.isInstanceId(instanceId)) {
            return local(context);
        }
        Fleet owner = owning(context.settings(), context.paths(), instanceId);
        return owner != null ? owner : fleet(context);
    }

    /** The fleet whose instance id this is (local-... or i-...), or null when it is neither. */
    static Fleet owning(ControllerSettings settings, KilnPaths paths, String instanceId) {
        if (instanceId != null && LocalProvider.isInstanceId(instanceId)) {
            return new LocalProvider(paths);
        }
        if (instanceId != null && Ec2Fleet.isInstanceId(instanceId)) {
            return new Ec2Fleet(Ec2Clients.create(settings));
        }
        return null;
    }

    Ec2Fleet ec2(Context context) {
        return new Ec2Fleet(client(context)).narrate(s -> context.err().println("kiln: " + s));
    }
}
