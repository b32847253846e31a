package dev.vhostappliance.qmp;

/** A command failed: answered as {"error": {"class": ..., "desc": ...}} (qmp-spec 2.4.2). */
public final class QmpException extends Exception {
    public static final String GENERIC_ERROR = "GenericError";
    public static final String COMMAND_NOT_FOUND = "CommandNotFound";
    public static final String DEVICE_NOT_FOUND = "DeviceNotFound";
    private final String errorClass;

    public QmpException(String desc) {
        this(GENERIC_ERROR, desc);
    }

    public QmpException(String errorClass, String desc) {
        super(desc);
        this.errorClass = errorClass;
    }

    public String errorClass() {
        return errorClass;
    }
}
