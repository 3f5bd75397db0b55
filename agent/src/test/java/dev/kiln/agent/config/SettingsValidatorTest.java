package dev.kiln.agent.config;

import io.micronaut.context.ApplicationContext;
import io.micronaut.validation.validator.DefaultValidator;
import jakarta.validation.Validator;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class SettingsValidatorTest {

    @Test
    void theContextUsesTheValidatorThatCheckedTheSources() {
        Map<String, Object> settings = Map.of("kiln.grpc.port", 7443, "kiln.lease.rebalance", "drain");
        assertEquals(List.of(), SettingsCatalog.problems("agent.yml", settings));
        try (ApplicationContext context = ApplicationContext.builder().deduceEnvironment(false).properties(settings).start()) {
            // One validator per start: a second one, and a second pass over the records, cost
            // the agent's start-up CPU time.
            assertEquals(List.of(SettingValues.validator()), List.copyOf(context.getBeansOfType(DefaultValidator.class)));
            assertSame(SettingValues.validator(), context.getBean(Validator.class));
            assertSame(SettingValues.validator(), context.getBeanValidator());
            assertEquals(7443, context.getBean(GrpcSettings.class).port());
            assertEquals("drain", context.getBean(LeaseSettings.class).rebalance());
        }
    }
}
