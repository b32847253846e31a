package dev.vhostappliance.block.io;

/**
 * The next step of a request a node started in several (qcow2: link the clusters an allocating write filled).
 * Runs on the queue thread of the engine that finished the request, when it is reaped, before the sink sees
 * it; set with {@link IoRequest#then} after the node started the request.
 */
@FunctionalInterface
public interface IoContinuation {
    /**
     * r finished on io (its result set). Returns true if r is complete now (it goes to the sink), false if
     * it goes on: queued again on io, completed with {@link IoEngine#completeNow}, or held by the node until
     * {@link IoEngine#resumeFromAnyThread}.
     */
    boolean resume(IoEngine io, IoRequest r);
}
