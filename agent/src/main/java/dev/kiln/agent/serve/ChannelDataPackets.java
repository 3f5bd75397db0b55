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
    private static final int TRAILER = 128;

    private ChannelDataPackets() {
    }

    /** An empty packet buffer for up to {@code content} bytes of channel data, written from its read position. */
    static Buffer allocate(int content) {
        return empty(new PacketBuffer(new byte[size(content)], false));
    }

    /**
     * {@code spare}, a packet buffer of this kind that nothing refers to any more, emptied for
     * {@code content} bytes when it has room for them; otherwise a new one.
     */
    static Buffer reuse(Buffer spare, int content) {
        return spare != null && spare.array().length >= size(content) ? empty(spare) : allocate(content);
    }

    private static int size(int content) {
        return HEADER + content + 1 + TRAILER;
    }

    private static Buffer empty(Buffer b) {
        b.rpos(HEADER);
        b.wpos(HEADER);
        return b;
    }
}
