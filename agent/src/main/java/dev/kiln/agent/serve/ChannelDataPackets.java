package dev.kiln.agent.serve;

import org.apache.sshd.common.SshConstants;
import org.apache.sshd.common.session.helpers.PacketBuffer;
import org.apache.sshd.common.util.buffer.Buffer;

/**
 * Packet buffers for channel data that MINA encrypts and sends as they are: when a
 * {@link PacketBuffer} is written whole to a channel's output stream, MINA fills in the header in
 * front of its data and encrypts it in place: it allocates no packet and copies no data.
 */
final class ChannelDataPackets {

    /**
     * What MINA writes in front of the data: the packet's length and padding length,
     * SSH_MSG_CHANNEL_DATA, the recipient channel, the data's length.
     */
    static final int HEADER = SshConstants.SSH_PACKET_HEADER_LEN + 1 + Integer.BYTES + Integer.BYTES;

    /**
     * Room after the data for the packet's padding (at most two cipher blocks less a byte) and its
     * MAC or authentication tag (at most 64 bytes), so that encrypting it never grows (copies) it.
     */
    static final int TRAILER = 128;

    private ChannelDataPackets() {
    }

    /** An empty packet buffer for up to {@code content} bytes of channel data, written from its read position. */
    static Buffer allocate(int content) {
        Buffer b = new PacketBuffer(new byte[HEADER + content + 1 + TRAILER], false);
        b.rpos(HEADER);
        b.wpos(HEADER);
        return b;
    }
}
