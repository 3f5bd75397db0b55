package dev.kiln.e2e;

import dev.kiln.controller.fleet.Ec2Fleet;
import dev.kiln.testkit.MotoServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.InstanceAttributeName;
import software.amazon.awssdk.services.ec2.model.IpPermission;
import software.amazon.awssdk.services.ec2.model.IpRange;
import software.amazon.awssdk.services.ec2.model.Subnet;
import software.amazon.awssdk.services.ec2.model.Tag;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A preview launched on EC2 (moto_server): the labels, boot script and services reach the agent
 * in the user data and the labels become tags; a declared port that the security groups open to
 * nobody is warned about (DescribeSecurityGroups) without refusing the launch; and a boot script
 * that cannot fit in the user data is refused, with the room there is, before anything is created.
 */
class PreviewEc2Test {

    static MotoServer moto;
    /** Records the controller's EC2 actions: what a refused launch did not call. */
    static Ec2Proxy proxy;
    static Ec2Client ec2;
    static Subnet subnet;
    static String ami;
    /** A group that lets 127.0.0.0/8 reach port 8000 only. */
    static String web;
    /** A group that opens only port 22 (SSH), from 127.0.0.0/8. */
    static String ssh;

    @TempDir
    Path dir;

    Kiln kiln;

    @BeforeAll
    static void startMoto() {
        moto = MotoServer.start();
        ec2 = moto.ec2Client();
        proxy = new Ec2Proxy(moto.endpoint(), ec2);
        MotoWorld.sdkCredentials();
        subnet = MotoWorld.loopbackSubnet(ec2, 3, null);
        ami = MotoWorld.agentImage(ec2, "kiln-agent-2026-12-01");
        web = group("preview-web", 8000);
        ssh = group("preview-ssh", 22);
    }

    static String group(String name, int port) {
        String id = ec2.createSecurityGroup(r -> r.groupName(name).description(name).vpcId(subnet.vpcId())).groupId();
        ec2.authorizeSecurityGroupIngress(r -> r.groupId(id).ipPermissions(IpPermission.builder().ipProtocol("tcp")
                .fromPort(port).toPort(port).ipRanges(IpRange.builder().cidrIp("127.0.0.0/8").build()).build()));
        return id;
    }

    @AfterAll
    static void stopMoto() {
        if (proxy != null) {
            proxy.close();
        }
        if (moto != null) {
            moto.close();
        }
    }

    @BeforeEach
    void setUp() {
        kiln = new Kiln(dir.resolve("home")).env("KILN_EC2_ENDPOINT", proxy.endpoint().toString())
                .env("KILN_REGION", "us-east-1").env("KILN_ADDRESS", "private").env("KILN_PROVIDER", "ec2");
        assertEquals(0, kiln.run("init").exitCode());
    }

    @AfterEach
    void tearDown() {
        MotoWorld.terminateKilnInstances(ec2);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> agentSettings(String instanceId) {
        String userData = new String(Base64.getDecoder().decode(ec2.describeInstanceAttribute(r -> r.instanceId(instanceId)
                .attribute(InstanceAttributeName.USER_DATA)).userData().value()), StandardCharsets.UTF_8);
        Map<String, Object> doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(userData);
        return (Map<String, Object>) doc.get("kiln");
    }

    @Test
    void labelsBootScriptAndServicesGoIntoTheUserDataAndAClosedPortIsWarnedAbout() throws Exception {
        Path script = dir.resolve("boot.sh");
        String text = "#!/bin/sh\nset -eu\ngit clone --branch \"$KILN_LABEL_BRANCH\" https://git.example/shop.git /srv/shop\n"
                + "cd /srv/shop && docker compose up -d\n";
        Files.writeString(script, text);
        Kiln.Run launch = kiln.run("launch", "--role", "preview", "--ami", ami, "--subnet", subnet.subnetId(),
                "--security-group", web, "--security-group", ssh, "--label", "pr=3012", "--label", "branch=main",
                "--boot-script", script.toString(), "--service", "web:8000=python3 -m http.server 8000",
                "--service", "shop:8081/admin", "--service-keeps-alive", "web", "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        String id = MotoWorld.launchedId(launch);

        Map<String, Object> kiln = agentSettings(id);
        assertEquals(Map.of("pr", "3012", "branch", "main"), kiln.get("labels"));
        assertEquals(text, kiln.get("boot-script"));
        assertEquals(List.of(Map.of("name", "web", "port", 8000, "command", "python3 -m http.server 8000", "keeps-alive", true),
                Map.of("name", "shop", "port", 8081, "path", "/admin")), kiln.get("services"));
        Map<String, String> tags = ec2.describeInstances(r -> r.instanceIds(id)).reservations().get(0).instances().get(0)
                .tags().stream().collect(Collectors.toMap(Tag::key, Tag::value));
        assertEquals("3012", tags.get("kiln:label:pr"));
        assertEquals("main", tags.get("kiln:label:branch"));
        assertEquals("preview", tags.get("kiln:role"));

        // 8081 is open to nobody (one group opens 8000, the other 22): warned about, naming both groups.
        assertTrue(launch.err().contains("kiln: warning: port 8081 (service shop) is open to nobody in security groups "
                + web + " (preview-web), " + ssh + " (preview-ssh)"), launch.err());
        assertTrue(launch.err().contains("aws ec2 authorize-security-group-ingress --group-id " + web
                + " --protocol tcp --port 8081"), launch.err());
        assertFalse(launch.err().contains("port 8000"), "the web group opens 8000:\n" + launch.err());
        assertTrue(launch.err().indexOf("warning: port 8081") < launch.err().indexOf("kiln: launching"),
                "warned before the launch:\n" + launch.err());
    }

    @Test
    void withoutSecurityGroupsTheVpcsDefaultGroupIsChecked() {
        String vpcDefault = ec2.describeSecurityGroups(r -> r.filters(Filter.builder().name("vpc-id").values(subnet.vpcId()).build(),
                Filter.builder().name("group-name").values("default").build())).securityGroups().get(0).groupId();
        // moto's default group lets in only what comes from the group itself; this test makes it hold no rule at all.
        var rules = ec2.describeSecurityGroups(r -> r.groupIds(vpcDefault)).securityGroups().get(0).ipPermissions();
        if (!rules.isEmpty()) {
            ec2.revokeSecurityGroupIngress(r -> r.groupId(vpcDefault).ipPermissions(rules));
        }
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet.subnetId(), "--service", "web:8000", "--no-wait");
        assertEquals(0, launch.exitCode(), launch.toString());
        assertTrue(launch.err().contains("kiln: warning: port 8000 (service web) is open to nobody in security group "
                + vpcDefault + " (default)"), launch.err());
    }

    @Test
    void aBootScriptTooLargeForTheUserDataIsRefusedWithTheRoomThereIsAndNothingIsCreated() throws Exception {
        // Under EC2's 16384 bytes by itself, too large beside Kiln's own settings (certificate, key, CA, SSH key).
        Path script = dir.resolve("big.sh");
        Files.writeString(script, "#!/bin/sh\n" + "echo 'a line of a long boot script, padded to be long enough'\n".repeat(250));
        int before = proxy.actions().size();
        Kiln.Run launch = kiln.run("launch", "--ami", ami, "--subnet", subnet.subnetId(), "--volume", "data:1",
                "--boot-script", script.toString(), "--no-wait");
        assertEquals(2, launch.exitCode(), launch.toString());
        assertTrue(launch.err().matches("(?s).*--boot-script " + java.util.regex.Pattern.quote(script.toString())
                + " does not fit in the user data: EC2 takes at most 16384 bytes; Kiln's own settings for this launch \\(.*\\)"
                + " take \\d{4}, which leaves \\d{4,5} for the boot script as YAML writes it \\(its text, each line indented by 4"
                + " spaces\\); this one takes \\d{5} \\(15510 bytes of text in 251 lines\\)\\. Nothing was launched.*"),
                launch.err());
        List<String> calls = proxy.actions().subList(before, proxy.actions().size());
        assertFalse(calls.contains("CreateVolume") || calls.contains("RunInstances"), "nothing was created: " + calls);
        assertEquals(List.of(), new Ec2Fleet(ec2).active(), "no instance");

        Files.write(script, new byte[16385]);
        Kiln.Run huge = kiln.run("launch", "--ami", ami, "--subnet", subnet.subnetId(), "--boot-script", script.toString());
        assertEquals(2, huge.exitCode(), huge.toString());
        assertTrue(huge.err().contains("is larger than 16384 bytes, all the user data EC2 takes"), huge.err());
    }

    @Test
    void aServiceOnTheAgentsOwnPortIsRefused() {
        int before = proxy.actions().size();
        Kiln.Run grpc = kiln.run("launch", "--ami", ami, "--subnet", subnet.subnetId(), "--service", "web:7443");
        assertEquals(2, grpc.exitCode(), grpc.toString());
        assertTrue(grpc.err().contains("port 7443 of service 'web' is the agent's own gRPC port (--grpc-port); nothing was"
                + " launched"), grpc.err());
        Kiln.Run ssh = kiln.run("launch", "--ami", ami, "--subnet", subnet.subnetId(), "--volume", "data:1",
                "--service", "web:22");
        assertEquals(2, ssh.exitCode(), ssh.toString());
        assertTrue(ssh.err().contains("port 22 of service 'web' is the agent's SSH server's port"), ssh.err());
        assertEquals(List.of(), proxy.actions().subList(before, proxy.actions().size()), "refused before any call to EC2");
    }
}
