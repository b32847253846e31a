package dev.vhostappliance.device;

/** Requests a device may send to the frontend over the backend request channel (SET_SLAVE_REQ_FD). */
public interface FrontendChannel {
    /** VHOST_USER_SLAVE_CONFIG_CHANGE_MSG: the config space changed (e.g. the disk was resized). */
    boolean notifyConfigChange();
}
