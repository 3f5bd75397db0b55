package dev.kiln.controller.fleet;

import dev.kiln.controller.KilnException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VolumeSpecTest {

    @Test
    void anExistingVolumeIsNamedByItsIdOnEitherProvider() {
        VolumeSpec ec2 = VolumeSpec.parse("data:vol-0123456789abcdef0");
        assertEquals("data", ec2.role());
        assertEquals("vol-0123456789abcdef0", ec2.volumeId());
        assertTrue(ec2.existing());
        assertEquals("vol-local-1a2b3c4d", VolumeSpec.parse("data:vol-local-1a2b3c4d").volumeId());
        assertEquals("vol-1a2b3c4d", VolumeSpec.parse("data:vol-1a2b3c4d").volumeId());
        VolumeSpec fresh = VolumeSpec.parse("builds:100");
        assertFalse(fresh.existing());
        assertNull(fresh.volumeId());
    }

    @Test
    void keepAndCollectionCarryTheExistingVolume() {
        VolumeSpec v = VolumeSpec.parse("data:vol-0123456789abcdef0").inCollection("vibes").kept();
        assertTrue(v.keep());
        assertEquals("vol-0123456789abcdef0", v.volumeId());
        assertEquals("vibes", v.collection());
        assertFalse(VolumeSpec.parse("data:1").keep());
    }

    @Test
    void aMalformedVolumeIdIsRefusedNamingTheForms() {
        for (String bad : new String[]{"data:vol-xyz", "data:vol-0123", "data:vol-local-12", "data:vol-0123456789ABCDEF0"}) {
            KilnException e = assertThrows(KilnException.class, () -> VolumeSpec.parse(bad), bad);
            assertTrue(e.getMessage().contains("ROLE:vol-ID"), e.getMessage());
        }
    }
}
