package dev.kiln.controller.cli;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import dev.kiln.controller.local.LocalProvider;
import picocli.CommandLine.Option;

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

    /** Applies --region to the settings, before a fleet is looked up. */
    private void applyRegion(Context context) {
        if (region != null) {
            context.overrideSetting("region", region);
        }
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

    /** The fleet these options name. */
    Fleet fleet(Fleets fleets) {
        return providerName(fleets.context()).equals("ec2") ? ec2(fleets) : fleets.local();
    }

    /** The fleet an instance id belongs to: local-... is the local provider's, i-... EC2's. */
    Fleet fleet(Fleets fleets, String instanceId) {
        applyRegion(fleets.context());
        if (instanceId != null && LocalProvider.isInstanceId(instanceId)) {
            return fleets.local();
        }
        Fleet owner = fleets.owning(instanceId);
        return owner != null ? owner : fleet(fleets);
    }

    /** EC2 in the region these options name. */
    Ec2Fleet ec2(Fleets fleets) {
        applyRegion(fleets.context());
        return fleets.ec2();
    }
}
