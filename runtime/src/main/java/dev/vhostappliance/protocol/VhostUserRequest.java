package dev.vhostappliance.protocol;

/** Frontend-to-backend request codes (vhost-user.rst, "Front-end message types"). */
public final class VhostUserRequest {
    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_LOG_BASE = 6;
    public static final int SET_LOG_FD = 7;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int SEND_RARP = 19;
    public static final int NET_SET_MTU = 20;
    public static final int SET_SLAVE_REQ_FD = 21;
    public static final int IOTLB_MSG = 22;
    public static final int SET_VRING_ENDIAN = 23;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int GET_INFLIGHT_FD = 31;
    public static final int SET_INFLIGHT_FD = 32;
    public static final int GPU_SET_SOCKET = 33;
    public static final int RESET_DEVICE = 34;
    public static final int VRING_KICK = 35;
    public static final int GET_MAX_MEM_SLOTS = 36;
    public static final int ADD_MEM_REG = 37;
    public static final int REM_MEM_REG = 38;
    public static final int SET_STATUS = 39;
    public static final int GET_STATUS = 40;

    /** Backend-to-frontend (slave channel) request codes. */
    public static final int SLAVE_IOTLB_MSG = 1;
    public static final int SLAVE_CONFIG_CHANGE_MSG = 2;

    private VhostUserRequest() {
    }

    public static String name(int request) {
        return switch (request) {
            case GET_FEATURES -> "GET_FEATURES";
            case SET_FEATURES -> "SET_FEATURES";
            case SET_OWNER -> "SET_OWNER";
            case RESET_OWNER -> "RESET_OWNER";
            case SET_MEM_TABLE -> "SET_MEM_TABLE";
            case SET_LOG_BASE -> "SET_LOG_BASE";
            case SET_LOG_FD -> "SET_LOG_FD";
            case SET_VRING_NUM -> "SET_VRING_NUM";
            case SET_VRING_ADDR -> "SET_VRING_ADDR";
            case SET_VRING_BASE -> "SET_VRING_BASE";
            case GET_VRING_BASE -> "GET_VRING_BASE";
            case SET_VRING_KICK -> "SET_VRING_KICK";
            case SET_VRING_CALL -> "SET_VRING_CALL";
            case SET_VRING_ERR -> "SET_VRING_ERR";
            case GET_PROTOCOL_FEATURES -> "GET_PROTOCOL_FEATURES";
            case SET_PROTOCOL_FEATURES -> "SET_PROTOCOL_FEATURES";
            case GET_QUEUE_NUM -> "GET_QUEUE_NUM";
            case SET_VRING_ENABLE -> "SET_VRING_ENABLE";
            case SET_SLAVE_REQ_FD -> "SET_SLAVE_REQ_FD";
            case GET_CONFIG -> "GET_CONFIG";
            case SET_CONFIG -> "SET_CONFIG";
            case GET_INFLIGHT_FD -> "GET_INFLIGHT_FD";
            case SET_INFLIGHT_FD -> "SET_INFLIGHT_FD";
            case GPU_SET_SOCKET -> "GPU_SET_SOCKET";
            case RESET_DEVICE -> "RESET_DEVICE";
            case VRING_KICK -> "VRING_KICK";
            case GET_MAX_MEM_SLOTS -> "GET_MAX_MEM_SLOTS";
            case ADD_MEM_REG -> "ADD_MEM_REG";
            case REM_MEM_REG -> "REM_MEM_REG";
            case SET_STATUS -> "SET_STATUS";
            case GET_STATUS -> "GET_STATUS";
            default -> "request " + request;
        };
    }
}
