package dev.vhostappliance.block.io;

/**
 * What a node does when the kernel refuses an operation it has another way to do (a file system without
 * FALLOC_FL_ZERO_RANGE gets zeroes written instead). Runs on the queue thread; returns the new result.
 */
@FunctionalInterface
public interface IoFallback {
    int failed(IoRequest request, int error);
}
