package dev.kiln.controller.fleet;

import dev.kiln.controller.client.AgentEndpoint;

import java.time.Instant;
import java.util.Map;

/**
 * An EC2 instance Kiln launched, as its tags describe it.
 *
 * @param id         instance id
 * @param role       kiln:role
 * @param labels     kiln:label:* tags
 * @param state      EC2 state name (pending, running, ...)
 * @param privateIp  private address, or null
 * @param publicIp   public address, or null
 * @param expiresAt  kiln:expires-at, or null
 * @param certName   kiln:cert-name: the name in the agent's certificate
 * @param grpcPort   kiln:grpc-port
 * @param launchTime when EC2 launched it
 */
public record ManagedInstance(String id, String role, Map<String, String> labels, String state, String privateIp,
                              String publicIp, Instant expiresAt, String certName, int grpcPort, Instant launchTime) {

    /** Where to reach its agent: {@code address} is public, private or auto (public if it has one). */
    public AgentEndpoint endpoint(String address) {
        String host = switch (address) {
            case "public" -> publicIp;
            case "private" -> privateIp;
            default -> publicIp != null ? publicIp : privateIp;
        };
        if (host == null) {
            return null;
        }
        return new AgentEndpoint(host, grpcPort, certName);
    }
}
