package dev.vhostappliance.protocol;

import dev.vhostappliance.device.FrontendChannel;
import dev.vhostappliance.libc.LibC;
import dev.vhostappliance.server.Poll;
import org.jboss.logging.Logger;

/** The backend request channel (SET_SLAVE_REQ_FD): messages from this backend to the frontend. */
final class FrontendRequestChannel implements FrontendChannel, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(FrontendRequestChannel.class);
    private static final int REPLY_TIMEOUT_MILLIS = 5000;

    private final MessageChannel channel;
    private final boolean replyAck;

    FrontendRequestChannel(int fd, boolean replyAck) {
        this.channel = new MessageChannel(fd);
        this.replyAck = replyAck;
    }

    @Override
    public synchronized boolean notifyConfigChange() {
        Message m = channel.message();
        m.setHeader(VhostUserRequest.SLAVE_CONFIG_CHANGE_MSG,
                Message.VERSION | (replyAck ? Message.FLAG_NEED_REPLY : 0), 0);
        try {
            channel.send();
            if (!replyAck) {
                return true;
            }
            Poll poll = new Poll(1);
            poll.add(channel.fd());
            if (poll.await(REPLY_TIMEOUT_MILLIS) == 0 || !channel.receive()) {
                LOG.warn("frontend did not acknowledge the config change");
                return false;
            }
            boolean ok = m.size() == 8 && m.buffer.get(Message.U64, Message.HEADER_SIZE) == 0;
            m.closeFds();
            return ok;
        } catch (Exception e) {
            LOG.warnf("config change notification failed: %s", e.getMessage());
            return false;
        }
    }

    @Override
    public synchronized void close() {
        int fd = channel.fd();
        channel.close();
        LibC.close(fd);
    }
}
