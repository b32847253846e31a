package dev.vhostappliance.cli;

/**
 * Initialisation failed or a requested feature cannot be enabled: the command prints the message as one
 * line on stderr and exits with {@link ExitCodes#STARTUP_FAILURE}, per the vhost-user backend conventions.
 */
public final class StartupException extends Exception {
    public StartupException(String message) {
        super(message);
    }

    public StartupException(String message, Throwable cause) {
        super(message, cause);
    }
}
