package dev.kiln.e2e;

import dev.kiln.controller.fleet.Ec2Fleet;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Subnet;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/** What the EC2 fleet tests set up in moto, and clean up after each test, in one place. */
final class MotoWorld {

    /**
     * The second octet of this JVM's loopback block, 127.N.0.0/16, held by a file lock for the
     * JVM's life: two test runs side by side would otherwise give their simulated instances the
     * same addresses, and one fleet's CLI would reach the other's agents.
     */
    private static final int BLOCK = claimBlock();
    private static FileLock blockLock;

    private MotoWorld() {
    }

    private static int claimBlock() {
        // The user's own directory, never followed through a link: the tests run as root, and
        // anyone can make names in the temporary directory first.
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "kiln-e2e-loopback-" + System.getProperty("user.name"));
        try {
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // ours from an earlier run, checked below
            }
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)
                    || !Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName().equals(System.getProperty("user.name"))) {
                throw new IllegalStateException(dir + " is not a directory of this user's own; remove it and run again");
            }
            for (int n = 10; n <= 250; n++) {
                FileChannel channel;
                try {
                    channel = FileChannel.open(dir.resolve(n + ".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            LinkOption.NOFOLLOW_LINKS);
                } catch (IOException e) {
                    continue; // a name this run cannot open: the next block
                }
                FileLock lock = channel.tryLock();
                if (lock != null) {
                    blockLock = lock;
                    return n;
                }
                channel.close();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot claim a loopback block under " + dir, e);
        }
        throw new IllegalStateException("every loopback block 127.10-250.0.0/16 is held by another test run");
    }

    /** The first three octets and dot of this JVM's subnet {@code third}, e.g. "127.12.1.". */
    static String subnetPrefix(int third) {
        return "127." + BLOCK + "." + third + ".";
    }

    /** Keys for the SDK's default credential chain, which the CLI uses (moto accepts any). */
    static void sdkCredentials() {
        System.setProperty("aws.accessKeyId", "testing");
        System.setProperty("aws.secretAccessKey", "testing");
    }

    /**
     * Subnet {@code third} (a /24) of this JVM's loopback block, so moto gives instances loopback
     * private addresses; in {@code zone}, or moto's choice when null.
     */
    static Subnet loopbackSubnet(Ec2Client ec2, int third, String zone) {
        String vpc = ec2.createVpc(v -> v.cidrBlock("127." + BLOCK + ".0.0/16")).vpc().vpcId();
        String cidr = subnetPrefix(third) + "0/24";
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
