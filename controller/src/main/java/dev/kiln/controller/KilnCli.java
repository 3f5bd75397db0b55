package dev.kiln.controller;

import dev.kiln.controller.cli.AgentClients;
import dev.kiln.controller.cli.KilnCommand;
import dev.kiln.controller.config.CliEnvironment;
import io.micronaut.configuration.picocli.MicronautFactory;
import io.grpc.StatusRuntimeException;
import io.micronaut.context.ApplicationContext;
import picocli.CommandLine;

import java.io.PrintWriter;

/**
 * Runs one kiln command line: a Micronaut context for the commands' dependencies, picocli for
 * parsing, and the one place where failures become messages and exit codes.
 */
public final class KilnCli {

    private KilnCli() {
    }

    /** Runs {@code args} in the given environment and returns the exit code. */
    public static int run(CliEnvironment env, String... args) {
        try (ApplicationContext context = ApplicationContext.builder()
                .banner(false)
                .deduceEnvironment(false)
                .singletons(env)
                .start()) {
            CommandLine cli = new CommandLine(KilnCommand.class, new MicronautFactory(context));
            KilnCommand.addSubcommands(cli, args);
            dev.kiln.controller.cli.HelpLayout.apply(cli);
            cli.setOut(new PrintWriter(env.out(), true));
            cli.setErr(new PrintWriter(env.err(), true));
            cli.setExecutionExceptionHandler((thrown, commandLine, parseResult) -> {
                Exception e = thrown;
                if (e instanceof StatusRuntimeException s) {
                    // An agent call's failure: named by the agent and deadline of the command's client.
                    e = context.getBean(AgentClients.class).translate(s).map(Exception.class::cast).orElse(s);
                }
                if (e instanceof KilnException k) {
                    env.err().println("kiln: " + k.getMessage());
                    return k.exitCode();
                }
                if (e instanceof CommandLine.ParameterException p) {
                    throw p;
                }
                env.err().println("kiln: unexpected error: " + e);
                if (env.get("KILN_DEBUG").isPresent()) {
                    e.printStackTrace(env.err());
                } else {
                    env.err().println("kiln: set KILN_DEBUG=1 for the stack trace");
                }
                return ExitCodes.FAILURE;
            });
            cli.setExitCodeExceptionMapper(e -> e instanceof KilnException k ? k.exitCode()
                    : e instanceof CommandLine.ParameterException ? ExitCodes.USAGE : ExitCodes.FAILURE);
            return cli.execute(args);
        }
    }
}
