package dev.kiln.controller.fleet;

import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.services.ec2.Ec2Client;
import software.amazon.awssdk.services.ec2.model.Filter;
import software.amazon.awssdk.services.ec2.model.IpPermission;
import software.amazon.awssdk.services.ec2.model.SecurityGroup;

import java.util.ArrayList;
import java.util.List;

/**
 * Which of a launch's service ports its security groups open to nobody, so {@code kiln launch}
 * can warn before reviewers find a link that never answers. A port counts as open when any
 * inbound rule of any of the groups covers it (TCP or all traffic) from any source: an address
 * range, a prefix list or another group; who that source is, is the user's choice.
 */
final class SecurityGroupPorts {

    private SecurityGroupPorts() {
    }

    /**
     * One warning per port that no group opens, naming the port, its service and the groups, with
     * the command that opens it; or one note when the groups cannot be read.
     *
     * @param groups the launch's --security-group ids; empty: the VPC's default group, which EC2 then uses
     * @param subnet the launch's subnet, or null for the default VPC
     */
    static List<String> warnings(Ec2Client ec2, List<String> groups, String subnet, List<ServiceSpec> services) {
        if (services.isEmpty()) {
            return List.of();
        }
        List<SecurityGroup> found;
        try {
            found = groups.isEmpty() ? defaultGroup(ec2, subnet) : ec2.describeSecurityGroups(r -> r.groupIds(groups)).securityGroups();
        } catch (SdkException e) {
            return List.of("warning: cannot check whether the security groups open the services' ports ("
                    + AwsErrors.translate(e, "DescribeSecurityGroups").getMessage() + ")");
        }
        if (found.isEmpty()) {
            return List.of("warning: cannot check whether the security group opens the services' ports: the VPC has no"
                    + " default security group; give --security-group");
        }
        List<String> names = found.stream().map(g -> g.groupId() + " (" + g.groupName() + ")").toList();
        List<String> out = new ArrayList<>();
        for (ServiceSpec s : services) {
            if (found.stream().noneMatch(g -> g.ipPermissions().stream().anyMatch(p -> covers(p, s.port())))) {
                out.add("warning: port " + s.port() + " (service " + s.name() + ") is open to nobody in security group"
                        + (names.size() > 1 ? "s " : " ") + String.join(", ", names) + ", so its link will not answer from"
                        + " outside the instance; to open it to your network: aws ec2 authorize-security-group-ingress"
                        + " --group-id " + found.get(0).groupId() + " --protocol tcp --port " + s.port()
                        + " --cidr 203.0.113.0/24 (your range)");
            }
        }
        return out;
    }

    /** The default group of the subnet's VPC (or of the default VPC): the one EC2 gives an instance launched without groups. */
    private static List<SecurityGroup> defaultGroup(Ec2Client ec2, String subnet) {
        String vpc = subnet != null
                ? ec2.describeSubnets(r -> r.subnetIds(subnet)).subnets().get(0).vpcId()
                : ec2.describeVpcs(r -> r.filters(Filter.builder().name("isDefault").values("true").build())).vpcs().stream()
                .findFirst().map(v -> v.vpcId()).orElse(null);
        if (vpc == null) {
            return List.of();
        }
        return ec2.describeSecurityGroups(r -> r.filters(Filter.builder().name("vpc-id").values(vpc).build(),
                Filter.builder().name("group-name").values("default").build())).securityGroups();
    }

    /** Whether an inbound rule lets TCP to {@code port} in from some source. */
    static boolean covers(IpPermission p, int port) {
        String protocol = p.ipProtocol();
        boolean all = "-1".equals(protocol);
        if (!all && !"tcp".equalsIgnoreCase(protocol) && !"6".equals(protocol)) {
            return false;
        }
        if (!all && p.fromPort() != null && p.toPort() != null && (port < p.fromPort() || port > p.toPort())) {
            return false;
        }
        return !p.ipRanges().isEmpty() || !p.ipv6Ranges().isEmpty() || !p.prefixListIds().isEmpty()
                || !p.userIdGroupPairs().isEmpty();
    }
}
