package dev.kiln.controller.cli;

import dev.kiln.controller.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.IVersionProvider;

import java.util.List;

/** {@code kiln}: the top-level command. */
@Command(name = "kiln",
        mixinStandardHelpOptions = true,
        versionProvider = KilnCommand.VersionProvider.class,
        description = "Build and serve file collections on EC2 (or locally) with kiln-agent.",
        footerHeading = "%nExit codes:%n",
        footer = {
                "  0 ok, 1 failure, 2 usage, 3 configuration (run `kiln init`),",
                "  4 agent unreachable, 5 refused by the agent, 6 not found, 7 already exists,",
                "  8 not supported by the agent, 9 timeout"
        })
public class KilnCommand implements Runnable {

    /**
     * The subcommands, in the order help lists them. They are added by {@link #addSubcommands}
     * rather than named in the annotation, so that a command line builds picocli's model for the
     * one command it runs, not all of them (building all takes 0.2 to 0.3 s without a class-data
     * archive; docs/performance.md).
     */
    public static final List<Class<?>> SUBCOMMANDS = List.of(
            InitCommand.class,
            UpCommand.class,
            DownCommand.class,
            StatusCommand.class,
            BuildCommand.class,
            LogsCommand.class,
            BuildsCommand.class,
            CancelCommand.class,
            ExtendCommand.class,
            StopCommand.class,
            LaunchCommand.class,
            EnrollCommand.class,
            LsCommand.class,
            OpenCommand.class,
            SnapshotCommand.class,
            SnapshotsCommand.class,
            ScheduleCommand.class,
            TerminateCommand.class,
            ReapCommand.class,
            PruneCommand.class,
            VolumesCommand.class,
            VolumeCommand.class,
            MountCommand.class,
            UnmountCommand.class,
            FreezeCommand.class,
            ThawCommand.class,
            SshConfigCommand.class,
            ForwardCommand.class,
            PullCommand.class,
            PushCommand.class,
            dev.kiln.controller.ui.UiCommand.class,
            CompletionCommand.class,
            HelpCommand.class);

    /**
     * Adds to {@code root} the subcommand {@code args} names, or every subcommand when the line
     * needs them all: no command, an option first, {@code help}, {@code completion} (whose script
     * covers every command) or a name that is not a command (so picocli can suggest one).
     */
    public static void addSubcommands(CommandLine root, String... args) {
        if (args.length > 0 && args[0].equals("__complete")) {
            root.addSubcommand(CompleteCommand.class); // hidden: what the completion script asks
            return;
        }
        if (args.length > 0 && !args[0].startsWith("-") && !args[0].equals("help") && !args[0].equals("completion")) {
            for (Class<?> c : SUBCOMMANDS) {
                if (c.getAnnotation(Command.class).name().equals(args[0])) {
                    root.addSubcommand(c);
                    return;
                }
            }
        }
        SUBCOMMANDS.forEach(root::addSubcommand);
    }

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getErr());
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "missing command");
    }

    /** The CLI's version string. */
    public static class VersionProvider implements IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"kiln " + Version.get()};
        }
    }
}
