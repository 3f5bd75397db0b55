package dev.kiln.agent.serve;

import org.apache.sshd.common.util.buffer.Buffer;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;
import org.apache.sshd.sftp.client.extensions.openssh.OpenSSHStatExtensionInfo;
import org.apache.sshd.sftp.common.SftpConstants;
import org.apache.sshd.sftp.common.extensions.openssh.AbstractOpenSSHExtensionParser.OpenSSHExtension;
import org.apache.sshd.sftp.server.FileHandle;
import org.apache.sshd.sftp.server.SftpSubsystem;
import org.apache.sshd.sftp.server.SftpSubsystemConfigurator;
import org.apache.sshd.sftp.server.SftpSubsystemFactory;
import org.apache.sshd.server.session.ServerSession;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * MINA's SFTP subsystem plus OpenSSH's {@code statvfs@openssh.com} and
 * {@code fstatvfs@openssh.com} extensions (sftp's {@code df}, sshfs's {@code statfs}), which MINA
 * does not implement. Read-only areas report {@code ST_RDONLY}.
 */
final class ServeSftp extends SftpSubsystemFactory {

    static final String STATVFS = "statvfs@openssh.com";
    static final String FSTATVFS = "fstatvfs@openssh.com";

    @Override
    public Command createSubsystem(ChannelSession channel) throws IOException {
        return new Subsystem(channel, this);
    }

    private static final class Subsystem extends SftpSubsystem {
        Subsystem(ChannelSession channel, SftpSubsystemConfigurator configurator) {
            super(channel, configurator);
        }

        @Override
        protected List<OpenSSHExtension> resolveOpenSSHExtensions(ServerSession session) {
            List<OpenSSHExtension> list = new ArrayList<>(super.resolveOpenSSHExtensions(session));
            list.add(new OpenSSHExtension(STATVFS, "2"));
            list.add(new OpenSSHExtension(FSTATVFS, "2"));
            return list;
        }

        @Override
        protected void executeExtendedCommand(Buffer buffer, int id, String extension) throws IOException {
            if (!STATVFS.equals(extension) && !FSTATVFS.equals(extension)) {
                super.executeExtendedCommand(buffer, id, extension);
                return;
            }
            try {
                Path p;
                if (STATVFS.equals(extension)) {
                    p = resolveFile(buffer.getString());
                } else {
                    String handle = buffer.getString();
                    p = validateHandle(handle, handles.get(handle), FileHandle.class).getFile();
                }
                OpenSSHStatExtensionInfo info = statvfs(p);
                Buffer reply = prepareReply(buffer);
                reply.putByte((byte) SftpConstants.SSH_FXP_EXTENDED_REPLY);
                reply.putInt(id);
                info.encode(reply);
                send(reply);
            } catch (IOException | RuntimeException e) {
                sendStatus(prepareReply(buffer), id, e, SftpConstants.SSH_FXP_EXTENDED, extension);
            }
        }

        private static OpenSSHStatExtensionInfo statvfs(Path p) throws IOException {
            FileStore store = Files.getFileStore(p);
            boolean writable = true;
            if (p.getFileSystem().provider() instanceof TreeFileSystemProvider tp) {
                writable = tp.resolve(p, true).writable();
            }
            long bsize = 4096;
            try {
                bsize = Math.max(512, store.getBlockSize());
            } catch (UnsupportedOperationException | IOException ignored) {
                // keep 4096
            }
            OpenSSHStatExtensionInfo i = new OpenSSHStatExtensionInfo();
            i.f_bsize = bsize;
            i.f_frsize = bsize;
            i.f_blocks = store.getTotalSpace() / bsize;
            i.f_bfree = store.getUnallocatedSpace() / bsize;
            i.f_bavail = store.getUsableSpace() / bsize;
            i.f_files = 0;
            i.f_ffree = 0;
            i.f_favail = 0;
            i.f_fsid = 0;
            i.f_flag = OpenSSHStatExtensionInfo.SSH_FXE_STATVFS_ST_NOSUID
                    | (writable ? 0 : OpenSSHStatExtensionInfo.SSH_FXE_STATVFS_ST_RDONLY);
            i.f_namemax = 255;
            return i;
        }
    }

}
