package dev.kiln.e2e;

import dev.kiln.controller.fleet.Ec2Fleet;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Subnet;

import java.util.List;

/** What the EC2 fleet tests set up in moto, and clean up after each test, in one place. */
final class MotoWorld {

    private MotoWorld() {
    }

    /** Keys for the SDK's default credential chain, which the CLI uses (moto accepts any). */
    static void sdkCredentials() {
        System.setProperty("aws.accessKeyId", "testing");
        System.setProperty("aws.secretAccessKey", "testing");
    }

    /**
     * A subnet in a VPC carved from 127.0.0.0/8, so moto gives instances loopback private
     * addresses; in {@code zone}, or moto's choice when null.
     */
    static Subnet loopbackSubnet(Ec2Client ec2, String cidr, String zone) {
        String vpc = ec2.createVpc(v -> v.cidrBlock("127.0.0.0/16")).vpc().vpcId();
        return ec2.createSubnet(s -> s.vpcId(vpc).cidrBlock(cidr).availabilityZone(zone)).subnet();
    }

    /** An image named {@code name} (as the agent's AMIs are), made from one of moto's. */
    static String agentImage(Ec2Client ec2, String name) {
        String base = ec2.describeImages(r -> r.maxResults(5)).images().get(0).imageId();
        return ec2.createImage(c -> c.instanceId(ec2.runInstances(r -> r.imageId(base).minCount(1).maxCount(1))
                .instances().get(0).instanceId()).name(name)).imageId();
    }

    /** Terminates every instance Kiln still counts as active, so the next test starts empty. */
    static void terminateKilnInstances(Ec2Client ec2) {
        List<String> ids = new Ec2Fleet(ec2).active().stream().map(m -> m.id()).toList();
        if (!ids.isEmpty()) {
            ec2.terminateInstances(t -> t.instanceIds(ids));
        }
    }

    /** The instance id in the first row of `kiln launch`'s table. */
    static String launchedId(Kiln.Run launch) {
        return launch.out().lines().skip(1).findFirst().orElseThrow().split("\\s+")[0];
    }
}
