package dev.vhostappliance.gpu;

/** virtio-gpu constants (virtio spec "GPU Device", linux/virtio_gpu.h). All wire fields are little-endian. */
public final class VirtioGpu {
    public static final int VIRTIO_ID_GPU = 16;
    public static final int CONTROLQ = 0;
    public static final int CURSORQ = 1;
    public static final int F_VIRGL = 0;
    public static final int F_EDID = 1;
    public static final int MAX_SCANOUTS = 16;
    public static final int CONFIG_BYTES = 16; // events_read, events_clear, num_scanouts, num_capsets

    // 2D commands
    public static final int CMD_GET_DISPLAY_INFO = 0x100;
    public static final int CMD_RESOURCE_CREATE_2D = 0x101;
    public static final int CMD_RESOURCE_UNREF = 0x102;
    public static final int CMD_SET_SCANOUT = 0x103;
    public static final int CMD_RESOURCE_FLUSH = 0x104;
    public static final int CMD_TRANSFER_TO_HOST_2D = 0x105;
    public static final int CMD_RESOURCE_ATTACH_BACKING = 0x106;
    public static final int CMD_RESOURCE_DETACH_BACKING = 0x107;
    public static final int CMD_GET_CAPSET_INFO = 0x108;
    public static final int CMD_GET_CAPSET = 0x109;
    public static final int CMD_GET_EDID = 0x10a;
    // cursor commands
    public static final int CMD_UPDATE_CURSOR = 0x300;
    public static final int CMD_MOVE_CURSOR = 0x301;

    // responses
    public static final int RESP_OK_NODATA = 0x1100;
    public static final int RESP_OK_DISPLAY_INFO = 0x1101;
    public static final int RESP_OK_EDID = 0x1104;
    public static final int RESP_ERR_UNSPEC = 0x1200;
    public static final int RESP_ERR_OUT_OF_MEMORY = 0x1201;
    public static final int RESP_ERR_INVALID_SCANOUT_ID = 0x1202;
    public static final int RESP_ERR_INVALID_RESOURCE_ID = 0x1203;
    public static final int RESP_ERR_INVALID_PARAMETER = 0x1205;

    public static final int FLAG_FENCE = 1;

    /** struct virtio_gpu_ctrl_hdr: type, flags, fence_id (u64), ctx_id, ring_idx (u8), padding[3]. */
    public static final int HDR_BYTES = 24;
    /** struct virtio_gpu_resp_display_info: header + 16 x {rect, enabled, flags}. */
    public static final int DISPLAY_INFO_BYTES = HDR_BYTES + MAX_SCANOUTS * 24;
    /** struct virtio_gpu_resp_edid: header, size, padding, edid[1024]. */
    public static final int EDID_RESP_BYTES = HDR_BYTES + 8 + 1024;
    /** struct virtio_gpu_mem_entry: addr (u64), length, padding. */
    public static final int MEM_ENTRY_BYTES = 16;
    /** QEMU's limit on backing entries per resource (virtio_gpu_create_mapping_iov). */
    public static final int MAX_BACKING_ENTRIES = 16384;
    public static final int CURSOR_SIZE = 64;

    private VirtioGpu() {
    }

    public static String commandName(int type) {
        return switch (type) {
            case CMD_GET_DISPLAY_INFO -> "GET_DISPLAY_INFO";
            case CMD_RESOURCE_CREATE_2D -> "RESOURCE_CREATE_2D";
            case CMD_RESOURCE_UNREF -> "RESOURCE_UNREF";
            case CMD_SET_SCANOUT -> "SET_SCANOUT";
            case CMD_RESOURCE_FLUSH -> "RESOURCE_FLUSH";
            case CMD_TRANSFER_TO_HOST_2D -> "TRANSFER_TO_HOST_2D";
            case CMD_RESOURCE_ATTACH_BACKING -> "RESOURCE_ATTACH_BACKING";
            case CMD_RESOURCE_DETACH_BACKING -> "RESOURCE_DETACH_BACKING";
            case CMD_GET_EDID -> "GET_EDID";
            case CMD_UPDATE_CURSOR -> "UPDATE_CURSOR";
            case CMD_MOVE_CURSOR -> "MOVE_CURSOR";
            default -> String.format("0x%x", type);
        };
    }
}
