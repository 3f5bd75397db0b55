package dev.kiln.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.List;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Region;
import software.amazon.awssdk.services.ec2.model.Vpc;

class MotoServerTest {

    @Test
    void vpcCreatedThroughTheEc2ClientIsListedByDescribeVpcs() {
        try (MotoServer moto = MotoServer.start()) {
            Ec2Client ec2 = moto.ec2Client();

            String vpcId = ec2.createVpc(r -> r.cidrBlock("10.42.0.0/16")).vpc().vpcId();
            List<Vpc> vpcs = ec2.describeVpcs(r -> r.vpcIds(vpcId)).vpcs();

            assertEquals(1, vpcs.size());
            assertEquals("10.42.0.0/16", vpcs.get(0).cidrBlock());
        }
    }

    @Test
    void describeRegionsIncludesTheClientsRegion() {
        try (MotoServer moto = MotoServer.start()) {
            List<String> regions = moto.ec2Client().describeRegions().regions().stream()
                    .map(Region::regionName)
                    .toList();

            assertTrue(regions.contains(MotoServer.REGION.id()), regions.toString());
        }
    }

    @Test
    void eachServerStartsEmpty() {
        try (MotoServer first = MotoServer.start(); MotoServer second = MotoServer.start()) {
            first.ec2Client().createVpc(r -> r.cidrBlock("10.1.0.0/16"));

            // moto starts with one default VPC per region; the created VPC exists only on `first`.
            assertEquals(2, first.ec2Client().describeVpcs().vpcs().size());
            assertEquals(1, second.ec2Client().describeVpcs().vpcs().size());
        }
    }

    @Test
    void closeStopsTheServerProcessAndFreesItsPort() throws Exception {
        MotoServer moto = MotoServer.start();
        ProcessHandle server = ProcessHandle.of(moto.pid()).orElseThrow();
        int port = moto.endpoint().getPort();

        moto.close();

        assertFalse(server.isAlive(), "moto_server pid " + server.pid() + " still running");
        assertThrows(ConnectException.class, () -> {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            }
        });
        moto.close(); // a second close is harmless
    }
}
