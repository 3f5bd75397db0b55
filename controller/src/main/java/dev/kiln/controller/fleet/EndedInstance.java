package dev.kiln.controller.fleet;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * The short record an instance leaves in its fleet when it ends (the local provider keeps one
 * per ended instance; {@code kiln ls --all} lists them).
 *
 * @param id       instance id
 * @param role     its role
 * @param labels   its labels
 * @param launched when it was launched
 * @param ended    when it ended (as the fleet saw it)
 * @param how      how it ended, in the user's terms (terminated by user, lease expired, crashed, ...)
 * @param volumes  what became of each volume, one line each (deleted and why, or kept and why)
 * @param logs     where its build and agent logs are kept, or null when they are not
 */
public record EndedInstance(String id, String role, Map<String, String> labels, Instant launched, Instant ended,
                            String how, List<String> volumes, String logs) {

    /** "local-... is terminated (ended T, how)": the first words of every message about it. */
    public String summary() {
        return id + " is terminated (ended " + ended + ", " + how + ")";
    }
}
