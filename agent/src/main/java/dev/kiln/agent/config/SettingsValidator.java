package dev.kiln.agent.config;

import io.micronaut.context.BeanResolutionContext;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.annotation.Replaces;
import io.micronaut.core.type.Argument;
import io.micronaut.inject.BeanDefinition;
import io.micronaut.inject.InjectionPoint;
import io.micronaut.validation.validator.DefaultValidator;
import io.micronaut.validation.validator.ValidatorConfiguration;
import jakarta.inject.Singleton;

/**
 * The agent's one Bean Validation validator. {@link SettingsCatalog} checks every settings source
 * with it before the application context starts, naming the source of a bad value; the context
 * uses the same instance, and binds the settings records without checking them a second time.
 * Any other bean with constraints is validated as usual.
 */
public final class SettingsValidator extends DefaultValidator {

    SettingsValidator(ValidatorConfiguration configuration) {
        super(configuration);
    }

    @Override
    public <T> void validateBean(BeanResolutionContext resolutionContext, BeanDefinition<T> definition, T bean) {
        if (!SettingsCatalog.RECORDS.contains(definition.getBeanType())) {
            super.validateBean(resolutionContext, definition, bean);
        }
    }

    @Override
    public <T> void validateBeanArgument(BeanResolutionContext resolutionContext, InjectionPoint injectionPoint,
                                         Argument<T> argument, int index, T value) {
        if (!SettingsCatalog.RECORDS.contains(injectionPoint.getDeclaringBean().getBeanType())) {
            super.validateBeanArgument(resolutionContext, injectionPoint, argument, index, value);
        }
    }

    /** Puts the agent's validator in the context in place of micronaut-validation's own. */
    @Factory
    static final class InContext {
        @Singleton
        @Replaces(DefaultValidator.class)
        SettingsValidator validator() {
            return SettingValues.validator();
        }
    }
}
