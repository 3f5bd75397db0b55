package dev.kiln.controller.fleet;

import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The boot mounts `kiln launch` writes into user data: a volume is vouched for as created empty
 * (the agent's proof that it is blank) only when this launch created it without a snapshot.
 */
class AgentUserDataTest {

    static final String NEW = "vol-0bbbbbbbbbbbbbbb2";
    static final String RESTORED = "vol-0aaaaaaaaaaaaaaa1";

    @Test
    void saysCreatedEmptyOnlyForAVolumeThisLaunchCreatedWithoutASnapshot() {
        InstanceLayout.Volume sources = Ec2Fleet.created(VolumeSpec.parse("sources:snap-0123456789abcdef0"), RESTORED,
                "/dev/sdf", "snap-0123456789abcdef0");
        InstanceLayout.Volume builds = Ec2Fleet.created(VolumeSpec.parse("builds:100"), NEW, "/dev/sdg", null);
        List<Map<String, Object>> mounts = mounts(InstanceLayout.plan("", "worker", List.of(sources, builds)));

        Map<String, Object> restored = mounts.get(0);
        assertEquals(RESTORED, restored.get("volume-id"));
        assertFalse(restored.containsKey("created-empty"), "a restored volume holds the snapshot's data: " + restored);
        assertFalse(restored.containsKey("format"), restored.toString());

        Map<String, Object> created = mounts.get(1);
        assertEquals(NEW, created.get("volume-id"));
        assertEquals(true, created.get("created-empty"), created.toString());
        assertEquals(true, created.get("format"), created.toString());

        assertFalse(mounts.get(2).containsKey("created-empty"), "the overlay: " + mounts.get(2));
    }

    @Test
    void vouchesForNoVolumeItDidNotCreateEmptyItself() {
        // A loop image or directory of the local provider (no EBS id), and a volume the launch
        // knows only as new: fresh, but with no CreateVolume of its own behind the claim.
        InstanceLayout.Volume loop = new InstanceLayout.Volume("data", "", "/dev/loop3", true);
        InstanceLayout.Volume unclaimed = new InstanceLayout.Volume("builds", NEW, "/dev/sdg", true);
        InstanceLayout.Volume noId = new InstanceLayout.Volume("data", "", "/dev/loop4", true, true);
        for (InstanceLayout.Volume v : List.of(loop, unclaimed, noId)) {
            assertEquals(Map.of(), AgentUserData.proofOfBlank(v), v.toString());
        }
        List<Map<String, Object>> mounts = mounts(InstanceLayout.plan("/srv/kiln", "worker", List.of(loop)));
        assertEquals(true, mounts.get(0).get("format"));
        assertFalse(mounts.get(0).containsKey("created-empty"), mounts.get(0).toString());
        assertTrue(Ec2Fleet.created(VolumeSpec.parse("data:8"), NEW, "/dev/sdf", null).createdEmpty());
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> mounts(InstanceLayout layout) {
        String yaml = AgentUserData.write("test", AgentUserData.sections(Duration.ofHours(2), Duration.ofHours(12), layout,
                null, null));
        Map<String, Object> doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(yaml);
        Map<String, Object> kiln = (Map<String, Object>) doc.get("kiln");
        return (List<Map<String, Object>>) ((Map<String, Object>) kiln.get("volumes")).get("mounts");
    }
}
