package dev.kiln.agent.volume;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MountTableTest {

    @Test
    void readsMountPointsOptionsAndOverlayLayersIncludingEscapedSpaces() {
        List<MountTable.Entry> e = MountTable.parse("""
                22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
                42 22 7:3 / /mnt/my\\040music ro,nosuid,nodev,noexec,noatime shared:40 - ext4 /dev/loop3 ro
                50 22 0:52 / /srv/vibes rw,nosuid,nodev,noexec,relatime - overlay overlay rw,lowerdir=/mnt/sources/vibes,upperdir=/mnt/builds/vibes,workdir=/mnt/builds/.vibes.kiln-work
                """);
        assertEquals(3, e.size());
        assertEquals(Path.of("/mnt/my music"), e.get(1).mountPoint());
        assertEquals("7:3", e.get(1).number());
        assertTrue(e.get(1).readOnly());
        assertEquals(Set.of("ro", "nosuid", "nodev", "noexec", "noatime"), e.get(1).options());
        assertEquals("overlay", e.get(2).type());
        assertEquals("/mnt/sources/vibes", e.get(2).superOptions().get("lowerdir"));
        assertEquals("/mnt/builds/.vibes.kiln-work", e.get(2).superOptions().get("workdir"));
    }
}
