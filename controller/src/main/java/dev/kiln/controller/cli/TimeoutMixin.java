package dev.kiln.controller.cli;

import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.time.Duration;
import java.util.Optional;

/**
 * {@code --timeout DURATION}, shared by the commands that ask an agent. A command states its own
 * default and wording with {@link Default}; without it the default is 10s, and KILN_TIMEOUT and
 * config.yml's timeout apply.
 */
public class TimeoutMixin {

    /** A command's --timeout default and help wording. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    @Inherited
    public @interface Default {
        /** The default, as written on the command line, or how the command computes it. */
        String value() default AgentClients.REQUEST;

        /** Whether KILN_TIMEOUT and config.yml's timeout stand in for the flag. */
        boolean settings() default true;

        /** What the timeout bounds, as help names it. */
        String what() default "Request timeout";

        /** Why the default is what it is, when help says so. */
        String why() default "";
    }

    @Spec(Spec.Target.MIXEE)
    CommandSpec mixee;

    @Option(names = "--timeout", paramLabel = "DURATION", description = "Request timeout.")
    String flag;

    /** The flag as given, or null. */
    public String flag() {
        return flag;
    }

    /** The flag as given, for a command whose default depends on its other flags. */
    public Optional<Duration> given() {
        return Optional.ofNullable(flag).map(Durations::parse);
    }

    /** The timeout: the flag; else, where the command takes them, KILN_TIMEOUT or config.yml; else its default. */
    public Duration get(Context context) {
        Default d = mixee.userObject().getClass().getAnnotation(Default.class);
        if (d == null || d.settings()) {
            return Durations.parse(context.settings().get("timeout", flag).orElse(d == null ? AgentClients.REQUEST : d.value()));
        }
        return flag != null ? Durations.parse(flag) : Durations.parse(d.value());
    }

    /** Gives each --timeout of these commands the help its command's {@link Default} describes. */
    static void describe(Iterable<CommandLine> commands) {
        for (CommandLine c : commands) {
            CommandSpec spec = c.getCommandSpec();
            OptionSpec option = spec.findOption("--timeout");
            if (option == null || !spec.mixins().values().stream().anyMatch(m -> m.userObject() instanceof TimeoutMixin)) {
                continue;
            }
            Default d = spec.userObject().getClass().getAnnotation(Default.class);
            String text = d == null ? "Request timeout (default: " + AgentClients.REQUEST + "; env KILN_TIMEOUT, config.yml timeout)."
                    : d.what() + " (default: " + d.value() + (d.why().isEmpty() ? "" : "; " + d.why())
                    + (d.settings() ? "; env KILN_TIMEOUT, config.yml timeout" : "") + ").";
            spec.remove(option);
            spec.addOption(option.toBuilder().description(text).build());
        }
    }
}
