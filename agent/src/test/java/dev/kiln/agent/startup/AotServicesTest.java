package dev.kiln.agent.startup;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The service lists the agent's jar carries, as Micronaut gets them. */
class AotServicesTest {

    @Test
    void aTypeWithoutImplementationsIsListedEmptySoMicronautDoesNotScanForIt() {
        Map<String, List<String>> lists = AotServices.parse(List.of("a.Configurer", "a.Loader", "a.Loader x.Yaml", "a.Loader x.Props"));
        assertEquals(Map.of("a.Configurer", List.of(), "a.Loader", List.of("x.Yaml", "x.Props")), lists);
        assertEquals(List.of("a.Configurer", "a.Loader"), List.copyOf(lists.keySet()), "in the lists' order");
    }

    @Test
    void aLineOfMoreThanTwoNamesIsAnErrorThatSaysToRebuild() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> AotServices.parse(List.of("a.Loader x.Yaml x.Props")));
        assertTrue(e.getMessage().contains(AotServices.RESOURCE) && e.getMessage().contains("rebuild"), e.getMessage());
    }
}
