package dev.vhostappliance.cli;

/** Process exit statuses (documented in the README). */
public final class ExitCodes {
    /** Normal end: SIGTERM/SIGINT, --print-capabilities, --help, or the inherited connection closed. */
    public static final int OK = 0;
    /** Initialisation failed or a requested feature cannot be enabled (one line on stderr says why). */
    public static final int STARTUP_FAILURE = 1;
    /** Usage error: unknown option, conflicting or missing options (one line on stderr). */
    public static final int USAGE = 2;

    private ExitCodes() {
    }
}
