package dev.kiln.agent.serve;

import org.apache.sshd.common.util.ValidateUtils;
import org.apache.sshd.common.util.buffer.Buffer;
import org.apache.sshd.common.util.buffer.BufferUtils;
import org.apache.sshd.server.channel.ChannelSession;
import org.apache.sshd.server.command.Command;
import org.apache.sshd.sftp.SftpModuleProperties;
import org.apache.sshd.sftp.client.extensions.openssh.OpenSSHStatExtensionInfo;
import org.apache.sshd.sftp.common.SftpConstants;
import org.apache.sshd.sftp.common.extensions.openssh.AbstractOpenSSHExtensionParser.OpenSSHExtension;
import org.apache.sshd.sftp.server.FileHandle;
import org.apache.sshd.sftp.server.SftpSubsystem;
import org.apache.sshd.sftp.server.SftpSubsystemConfigurator;
import org.apache.sshd.sftp.server.SftpSubsystemFactory;
import org.apache.sshd.server.session.ServerSession;

import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * MINA's SFTP subsystem plus OpenSSH's {@code statvfs@openssh.com} and
 * {@code fstatvfs@openssh.com} extensions (sftp's {@code df}, sshfs's {@code statfs}), which MINA
 * does not implement. Read-only areas report {@code ST_RDONLY}.
 *
 * <p>Reads are answered without copying the data: the file's bytes are read straight into packet
 * buffers of the client's packet size (32 KiB for OpenSSH; MINA's reads are up to 63 KiB) with room
 * for what MINA adds around them (header, padding, tag), which MINA encrypts and sends as they are.
 * MINA's own subsystem builds each reply in a buffer of its size, copies it whole and copies each
 * part again into a packet: three allocations and copies of every byte served, which keep the
 * agent's small young generation collecting and promote the replies in flight. What this saves is
 * in docs/performance.md.
 */
final class ServeSftp extends SftpSubsystemFactory {

    static final String STATVFS = "statvfs@openssh.com";
    static final String FSTATVFS = "fstatvfs@openssh.com";

    @Override
    public Command createSubsystem(ChannelSession channel) throws IOException {
        return new Subsystem(channel, this);
    }

    /** SSH_FXP_DATA's fields before the data: the message's length, its type, the request id, the data's length. */
    private static final int FXP_DATA_HEADER = Integer.BYTES + 1 + Integer.BYTES + Integer.BYTES;
    /** Packet sizes below this (no real client's) leave reads to MINA's own code. */
    private static final long MIN_PACKET = 1024;
    /** Packet sizes above this (1 MiB) are read as this. */
    private static final long MAX_PACKET = 1 << 20;

    private static final class Subsystem extends SftpSubsystem {
        Subsystem(ChannelSession channel, SftpSubsystemConfigurator configurator) {
            super(channel, configurator);
        }

        /**
         * MINA's SSH_FXP_READ (the same limits, errors and end-of-file flag), with the reply built
         * in packet buffers of at most the client's packet size each, which MINA encrypts and sends
         * as they are. An {@code SftpEventListener} (the agent registers none) sees a
         * {@code reading}/{@code read} pair per packet rather than per request.
         */
        @Override
        protected void doRead(Buffer buffer, int id) throws IOException {
            long packet = getServerChannelSession().getRemoteWindow().getPacketSize();
            if (packet < MIN_PACKET) {
                super.doRead(buffer, id);
                return;
            }
            String handle = buffer.getString(StandardCharsets.ISO_8859_1);
            long offset = buffer.getLong();
            int requested = buffer.getInt();
            int length = Math.min(requested, SftpModuleProperties.MAX_READDATA_PACKET_LENGTH.getRequired(getServerSession()));
            List<Buffer> packets;
            try {
                ValidateUtils.checkTrue(length >= 0, "Illegal requested read length: %d", length);
                packets = readIntoPackets(id, handle, offset, length, (int) Math.min(packet, MAX_PACKET));
            } catch (IOException | RuntimeException e) {
                sendStatus(prepareReply(buffer), id, e, SftpConstants.SSH_FXP_READ, hex(handle), offset, requested);
                return;
            }
            for (Buffer p : packets) {
                out.writeBuffer(p);
            }
        }

        /**
         * The SSH_FXP_DATA reply to a read of up to {@code length} bytes at {@code offset}, as
         * channel data packets of at most {@code packet} bytes each, the file's bytes read
         * straight into them.
         */
        private List<Buffer> readIntoPackets(int id, String handle, long offset, int length, int packet) throws IOException {
            List<Buffer> packets = new ArrayList<>(length / packet + 2);
            Buffer first = ChannelDataPackets.allocate((int) Math.min((long) FXP_DATA_HEADER + length, packet));
            first.putUInt(0L); // the message's length, filled in below
            first.putByte((byte) SftpConstants.SSH_FXP_DATA);
            first.putInt(id);
            first.putUInt(0L); // the data's length, filled in below
            packets.add(first);
            AtomicReference<Boolean> eof = new AtomicReference<>();
            Buffer current = first;
            int total = 0;
            while (true) {
                if (current.available() == packet) {
                    current = ChannelDataPackets.allocate(Math.min(length - total, packet));
                    packets.add(current);
                }
                int room = Math.min(length - total, packet - current.available());
                int n = doRead(id, handle, offset + total, room, current.array(), current.wpos(), eof);
                if (n < 0) {
                    if (total == 0) {
                        throw new EOFException("Unable to read " + length + " bytes from offset=" + offset + " of " + hex(handle));
                    }
                    break;
                }
                current.wpos(current.wpos() + n);
                total += n;
                if (n < room || total == length) {
                    break;
                }
            }
            if (current.available() == 0) {
                packets.remove(packets.size() - 1); // the file ended where a packet began
                current = packets.get(packets.size() - 1);
            }
            Boolean atEnd = eof.get();
            if (total < length && getVersion() >= SftpConstants.SFTP_V6 && atEnd != null) {
                current.putBoolean(atEnd);
            }
            long message = -Integer.BYTES;
            for (Buffer p : packets) {
                message += p.available();
            }
            BufferUtils.updateLengthPlaceholder(first, ChannelDataPackets.HEADER, message);
            BufferUtils.updateLengthPlaceholder(first, ChannelDataPackets.HEADER + FXP_DATA_HEADER - Integer.BYTES, total);
            return packets;
        }

        private static String hex(String handle) {
            return BufferUtils.toHex(handle.getBytes(StandardCharsets.ISO_8859_1));
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
                try (ServedTree.Located r = tp.locate(p, true)) {
                    writable = r.writable();
                }
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
