package dev.kiln.agent.serve;

import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;
import org.apache.sshd.server.subsystem.SubsystemFactory;

import java.io.IOException;

/**
 * The {@code sftp} subsystem, made on the first SFTP session: MINA's SFTP server (about 20 classes
 * and their share of the class-data archive) stays out of an agent that nobody has fetched from.
 */
final class LazySftp implements SubsystemFactory {

    private volatile SubsystemFactory sftp;

    @Override
    public String getName() {
        return "sftp";
    }

    @Override
    public Command createSubsystem(ChannelSession channel) throws IOException {
        SubsystemFactory f = sftp;
        if (f == null) {
            synchronized (this) {
                f = sftp;
                if (f == null) {
                    f = new ServeSftp();
                    sftp = f;
                }
            }
        }
        return f.createSubsystem(channel);
    }
}
