package dev.vhostappliance.protocol;

/** vhost-user protocol feature bits (GET/SET_PROTOCOL_FEATURES) and the vhost feature bits the core owns. */
public final class ProtocolFeature {
    public static final int MQ = 0;
    public static final int LOG_SHMFD = 1;
    public static final int RARP = 2;
    public static final int REPLY_ACK = 3;
    public static final int MTU = 4;
    public static final int SLAVE_REQ = 5;
    public static final int CROSS_ENDIAN = 6;
    public static final int CRYPTO_SESSION = 7;
    public static final int PAGEFAULT = 8;
    public static final int CONFIG = 9;
    public static final int SLAVE_SEND_FD = 10;
    public static final int HOST_NOTIFIER = 11;
    public static final int INFLIGHT_SHMFD = 12;
    public static final int RESET_DEVICE = 13;
    public static final int INBAND_NOTIFICATIONS = 14;
    public static final int CONFIGURE_MEM_SLOTS = 15;
    public static final int STATUS = 16;

    /** VHOST_USER_F_PROTOCOL_FEATURES: a virtio feature bit the backend offers to unlock protocol features. */
    public static final int F_PROTOCOL_FEATURES = 30;
    /** VHOST_F_LOG_ALL: dirty logging for live migration. */
    public static final int F_LOG_ALL = 26;

    private ProtocolFeature() {
    }

    public static long bit(int b) {
        return 1L << b;
    }
}
