package dev.kiln.agent.schedule;

import dev.kiln.agent.startup.DegradedMode;
import io.micronaut.context.BeanProvider;
import io.micronaut.context.annotation.Requires;
import io.micronaut.context.event.ApplicationEventListener;
import io.micronaut.context.event.StartupEvent;
import io.micronaut.core.order.Ordered;
import jakarta.inject.Singleton;

/**
 * Starts the schedules once the agent has started (after its boot mounts, which run in
 * {@code AgentStartup}); an agent running degraded touches no volume, so it runs none.
 */
@Singleton
@Requires(beans = DegradedMode.class)
final class ScheduleStartup implements ApplicationEventListener<StartupEvent>, Ordered {

    private final DegradedMode policy;
    private final BeanProvider<ScheduleRunner> runner;

    ScheduleStartup(DegradedMode policy, BeanProvider<ScheduleRunner> runner) {
        this.policy = policy;
        this.runner = runner;
    }

    @Override
    public void onApplicationEvent(StartupEvent event) {
        if (!policy.degraded()) {
            runner.get().start();
        }
    }

    @Override
    public int getOrder() {
        return 100; // after AgentStartup (order 0)
    }
}
