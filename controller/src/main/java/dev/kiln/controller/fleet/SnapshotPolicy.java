package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Which snapshot {@code ROLE:latest} restores and which ones {@code --keep N} deletes, decided
 * from a list of snapshots, the same on every provider.
 *
 * <p>A snapshot's identity is its collection and its volume role: every layout uses the roles
 * {@code sources} and {@code builds}, so the role alone would mix two collections. Only Kiln's
 * snapshots (marked) of the asked collection and role are ever picked or deleted. A snapshot in
 * state {@code error} is treated as absent (and named). A marked snapshot without a collection
 * (from a Kiln before collections) is never deleted, and {@code latest} refuses to guess when one
 * is newer than what it would pick, since it may hold any collection.
 */
public final class SnapshotPolicy {

    /** The collection of a launch that names none: one collection needs no name. */
    public static final String DEFAULT_COLLECTION = "default";

    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._-]{0,62}");

    private SnapshotPolicy() {
    }

    /** The collection name, checked: lower-case letters, digits, '.', '_', '-', at most 63 characters. */
    public static String checkCollection(String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new KilnException(ExitCodes.USAGE, "collection '" + name + "' must be 1-63 lower-case letters, digits,"
                    + " '.', '_' or '-', starting with a letter or digit, e.g. music");
        }
        return name;
    }

    /**
     * The snapshot {@code ROLE:latest} restores.
     *
     * @param snapshot the newest completed snapshot of the collection and role
     * @param notes    what the user should know about the choice (a newer snapshot in error skipped)
     */
    public record Restore(FleetSnapshot snapshot, List<String> notes) {
    }

    /**
     * What {@code --keep N} does.
     *
     * @param delete the snapshots to delete, newest first
     * @param notes  what the user should know (kept beyond N, skipped in error, left without a collection)
     */
    public record Retention(List<FleetSnapshot> delete, List<String> notes) {
    }

    /**
     * Chooses the snapshot that {@code ROLE:latest} restores in a collection: the newest
     * completed one; a newer one in {@code error} is skipped and named; a newer pending one is
     * waited for by the user (refused), not silently passed over.
     *
     * @param all snapshots of any role, collection and mark (others are ignored)
     * @throws KilnException NOT_FOUND when the collection has no snapshot of the role; REFUSED when
     *                       the newest is pending, or an older Kiln's snapshot without a collection
     *                       is newer than the pick
     */
    public static Restore latest(List<FleetSnapshot> all, String collection, String role) {
        List<FleetSnapshot> ours = of(all, collection, role);
        List<FleetSnapshot> live = ours.stream().filter(s -> !failed(s)).toList();
        List<FleetSnapshot> legacy = of(all, "", role).stream().filter(s -> !failed(s)).toList();
        FleetSnapshot newest = live.isEmpty() ? null : live.get(0);
        List<FleetSnapshot> unclear = legacy.stream()
                .filter(s -> newest == null || s.startTime().isAfter(newest.startTime())).toList();
        if (!unclear.isEmpty()) {
            throw new KilnException(ExitCodes.REFUSED, role + ":latest in collection '" + collection + "' is ambiguous: "
                    + ids(unclear) + (unclear.size() == 1 ? " carries" : " carry") + " no collection (taken by a Kiln"
                    + " before collections) and " + (unclear.size() == 1 ? "is" : "are") + " newer than "
                    + (newest == null ? "any " + role + " snapshot of '" + collection + "'" : newest.id())
                    + "; Kiln does not guess which collection holds what. Tag each with its collection (EC2: aws ec2"
                    + " create-tags --resources SNAPSHOT_ID --tags Key=" + Ec2Fleet.COLLECTION + ",Value=" + collection
                    + "; local: add collection=" + collection + " to its snapshot.properties), or restore one by its id: "
                    + role + ":" + unclear.get(0).id());
        }
        if (newest == null) {
            Set<String> elsewhere = new TreeSet<>();
            all.stream().filter(s -> s.managed() && s.volumeRole().equals(role) && !s.collection().isEmpty())
                    .forEach(s -> elsewhere.add(s.collection()));
            throw new KilnException(ExitCodes.NOT_FOUND, "no Kiln snapshot of volume role '" + role + "' yet in collection '"
                    + collection + "'" + (ours.isEmpty() ? "" : " (only " + ids(ours) + ", in state error)")
                    + "; launch with " + role + ":SIZE_GIB for a new volume first"
                    + (elsewhere.isEmpty() ? "" : ", or choose a collection that has one: --collection "
                    + String.join("|", elsewhere)));
        }
        if (!"completed".equals(newest.state())) {
            // Restoring an older one instead would be a silent surprise; EC2 restores only completed ones.
            throw new KilnException(ExitCodes.REFUSED, "the newest snapshot of '" + role + "' in collection '" + collection
                    + "', " + newest.id() + ", is " + newest.state() + (newest.progress().isEmpty() ? "" : " ("
                    + newest.progress() + ")") + "; wait until `kiln snapshots --role " + role + "` shows it completed,"
                    + " or name one: " + role + ":snap-ID");
        }
        List<String> notes = new ArrayList<>();
        ours.stream().filter(s -> failed(s) && s.startTime().isAfter(newest.startTime())).forEach(s -> notes.add(
                s.id() + ", a newer snapshot of " + collection + "/" + role + ", is in state error (it never completed and"
                        + " cannot be restored): ignoring it; restoring " + newest.id() + " (taken " + newest.startTime() + ")"));
        return new Restore(newest, notes);
    }

    /**
     * Chooses what {@code --keep N} deletes in a collection: Kiln's snapshots of the role beyond
     * the newest {@code keep}, but never the newest completed one (while newer ones are pending it
     * is the only one that can be restored). Snapshots in error neither count nor are deleted;
     * snapshots without a collection are left alone.
     */
    public static Retention retain(List<FleetSnapshot> all, String collection, String role, int keep) {
        if (keep < 1) {
            throw new KilnException(ExitCodes.USAGE, "--keep must be at least 1 (the newest snapshot is never deleted)");
        }
        if (collection == null || collection.isEmpty()) {
            throw new KilnException(ExitCodes.REFUSED, "--keep needs a collection, and this volume names none (launched by a"
                    + " Kiln before collections): pass --collection NAME to say which collection's " + role + " snapshots"
                    + " to prune");
        }
        List<FleetSnapshot> live = of(all, collection, role).stream().filter(s -> !failed(s)).toList();
        Set<FleetSnapshot> kept = new LinkedHashSet<>(live.subList(0, Math.min(keep, live.size())));
        List<String> notes = new ArrayList<>();
        live.stream().filter(s -> "completed".equals(s.state())).findFirst().filter(kept::add).ifPresent(s -> notes.add(
                "kept " + s.id() + " as well: it is the newest completed snapshot of " + collection + "/" + role
                        + ", and the newer ones have not completed yet"));
        of(all, collection, role).stream().filter(SnapshotPolicy::failed).forEach(s -> notes.add("not pruned: " + s.id()
                + " is in state error (it never completed and cannot be restored); it does not count toward --keep;"
                + " delete it yourself"));
        of(all, "", role).forEach(s -> notes.add("not pruned: " + s.id() + " names no collection (taken by a Kiln before"
                + " collections); tag it with its collection to have it pruned with it"));
        return new Retention(live.stream().filter(s -> !kept.contains(s)).toList(), notes);
    }

    /** Kiln's snapshots of one collection ("" for none) and role, newest first. */
    private static List<FleetSnapshot> of(List<FleetSnapshot> all, String collection, String role) {
        return all.stream().filter(s -> s.managed() && s.volumeRole().equals(role) && s.collection().equals(collection))
                .sorted(Comparator.comparing(FleetSnapshot::startTime).reversed()).toList();
    }

    private static boolean failed(FleetSnapshot s) {
        return "error".equals(s.state());
    }

    private static String ids(List<FleetSnapshot> snapshots) {
        return String.join(", ", snapshots.stream().map(FleetSnapshot::id).toList());
    }
}
