package dev.kiln.controller.cli;

import dev.kiln.controller.Version;
import picocli.CommandLine.Command;
import picocli.CommandLine.HelpCommand;
import picocli.CommandLine.IVersionProvider;

/** {@code kiln}: the top-level command. */
@Command(name = "kiln",
        mixinStandardHelpOptions = true,
        versionProvider = KilnCommand.VersionProvider.class,
        description = "Build and serve file collections on EC2 (or locally) with kiln-agent.",
        subcommands = {
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
                LsCommand.class,
                SnapshotCommand.class,
                SnapshotsCommand.class,
                TerminateCommand.class,
                ReapCommand.class,
                VolumesCommand.class,
                MountCommand.class,
                UnmountCommand.class,
                FreezeCommand.class,
                ThawCommand.class,
                SshConfigCommand.class,
                PullCommand.class,
                PushCommand.class,
                CompletionCommand.class,
                HelpCommand.class
        },
        footerHeading = "%nExit codes:%n",
        footer = {
                "  0 ok, 1 failure, 2 usage, 3 configuration (run `kiln init`), 4 agent unreachable,",
                "  5 refused by the agent, 6 not found, 7 already exists, 8 not supported by the agent, 9 timeout"
        })
public class KilnCommand implements Runnable {

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
