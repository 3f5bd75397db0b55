package dev.kiln.controller.cli;

import dev.kiln.controller.client.AgentEndpoint;
import dev.kiln.controller.fleet.Ec2Clients;
import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.controller.fleet.ManagedInstance;
import picocli.CommandLine.Option;
import software.amazon.awssdk.services.ec2.Ec2Client;

/** Options shared by the commands that talk to EC2. */
public class FleetMixin {

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

    Ec2Fleet fleet(Context context) {
        return new Ec2Fleet(client(context));
    }
}
