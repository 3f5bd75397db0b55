package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What ROLE:latest restores and what --keep N deletes, from lists of snapshots in the states EC2
 * reports (moto completes every snapshot at once, so pending and error are written here).
 */
class SnapshotPolicyTest {

    static final Instant T0 = Instant.parse("2026-12-01T00:00:00Z");

    /** A Kiln snapshot taken {@code minute} minutes after T0. */
    static FleetSnapshot snap(String id, String collection, String role, String state, int minute) {
        return new FleetSnapshot(id, role, state, state.equals("completed") ? "100%" : "40%", 1,
                T0.plusSeconds(60L * minute), "i-0", "", true, collection);
    }

    static List<String> ids(List<FleetSnapshot> s) {
        return s.stream().map(FleetSnapshot::id).toList();
    }

    @Test
    void twoCollectionsWithTheSameRolesNeverCross() {
        List<FleetSnapshot> all = List.of(
                snap("snap-m1", "music", "builds", "completed", 1),
                snap("snap-p1", "photos", "builds", "completed", 2),
                snap("snap-m2", "music", "builds", "completed", 3),
                snap("snap-p2", "photos", "builds", "completed", 4),
                snap("snap-p3", "photos", "builds", "completed", 5),
                snap("snap-ms", "music", "sources", "completed", 6));

        assertEquals("snap-m2", SnapshotPolicy.latest(all, "music", "builds").snapshot().id());
        assertEquals("snap-p3", SnapshotPolicy.latest(all, "photos", "builds").snapshot().id());
        assertEquals(List.of("snap-m1"), ids(SnapshotPolicy.retain(all, "music", "builds", 1).delete()));
        assertEquals(List.of("snap-p1"), ids(SnapshotPolicy.retain(all, "photos", "builds", 2).delete()));
        KilnException none = assertThrows(KilnException.class, () -> SnapshotPolicy.latest(all, "photos", "sources"));
        assertEquals(ExitCodes.NOT_FOUND, none.exitCode());
        assertEquals("no Kiln snapshot of volume role 'sources' yet in collection 'photos'; launch with sources:SIZE_GIB"
                + " for a new volume first, or choose a collection that has one: --collection music", none.getMessage());
    }

    @Test
    void theNewestCompletedSnapshotSurvivesKeepOneWhileANewerOneIsPending() {
        List<FleetSnapshot> all = List.of(
                snap("snap-old", "music", "builds", "completed", 1),
                snap("snap-done", "music", "builds", "completed", 2),
                snap("snap-pending", "music", "builds", "pending", 3));

        SnapshotPolicy.Retention r = SnapshotPolicy.retain(all, "music", "builds", 1);
        assertEquals(List.of("snap-old"), ids(r.delete()), "the pending one and the newest completed one stay");
        assertEquals(List.of("kept snap-done as well: it is the newest completed snapshot of music/builds, and the newer"
                + " ones have not completed yet"), r.notes());
        // Two pending in a row: still the newest completed one is kept.
        List<FleetSnapshot> twoPending = List.of(all.get(0), all.get(1), all.get(2),
                snap("snap-pending2", "music", "builds", "pending", 4));
        assertEquals(List.of("snap-old"), ids(SnapshotPolicy.retain(twoPending, "music", "builds", 2).delete()));
    }

    @Test
    void aNewestSnapshotInErrorIsPassedOverLoudlyAndNeverCounted() {
        List<FleetSnapshot> all = List.of(
                snap("snap-old", "music", "builds", "completed", 1),
                snap("snap-good", "music", "builds", "completed", 2),
                snap("snap-bad", "music", "builds", "error", 3));

        SnapshotPolicy.Restore latest = SnapshotPolicy.latest(all, "music", "builds");
        assertEquals("snap-good", latest.snapshot().id());
        assertEquals(List.of("snap-bad, a newer snapshot of music/builds, is in state error (it never completed and cannot"
                + " be restored): ignoring it; restoring snap-good (taken 2026-12-01T00:02:00Z)"), latest.notes());

        SnapshotPolicy.Retention r = SnapshotPolicy.retain(all, "music", "builds", 1);
        assertEquals(List.of("snap-old"), ids(r.delete()), "the error one does not count toward --keep");
        assertTrue(r.notes().contains("not pruned: snap-bad is in state error (it never completed and cannot be restored);"
                + " it does not count toward --keep; delete it yourself"), r.notes().toString());
    }

    @Test
    void aNewestPendingSnapshotIsWaitedForNotSilentlySkipped() {
        List<FleetSnapshot> all = List.of(
                snap("snap-done", "music", "builds", "completed", 1),
                snap("snap-pending", "music", "builds", "pending", 2));
        KilnException e = assertThrows(KilnException.class, () -> SnapshotPolicy.latest(all, "music", "builds"));
        assertEquals(ExitCodes.REFUSED, e.exitCode());
        assertTrue(e.getMessage().startsWith("the newest snapshot of 'builds' in collection 'music', snap-pending, is pending"
                + " (40%)"), e.getMessage());
    }

    @Test
    void anOlderKilnsSnapshotWithoutACollectionIsNeverGuessedAtNorPruned() {
        FleetSnapshot legacy = new FleetSnapshot("snap-legacy", "builds", "completed", "100%", 1, T0.plusSeconds(600), "i-0",
                "", true);
        List<FleetSnapshot> all = List.of(snap("snap-m1", "music", "builds", "completed", 1),
                snap("snap-m2", "music", "builds", "completed", 2), legacy);

        KilnException e = assertThrows(KilnException.class, () -> SnapshotPolicy.latest(all, "music", "builds"));
        assertEquals(ExitCodes.REFUSED, e.exitCode());
        assertEquals("builds:latest in collection 'music' is ambiguous: snap-legacy carries no collection (taken by a Kiln"
                + " before collections) and is newer than snap-m2; Kiln does not guess which collection holds what. Tag"
                + " each with its collection (EC2: aws ec2 create-tags --resources SNAPSHOT_ID --tags"
                + " Key=kiln:collection,Value=music; local: add collection=music to its snapshot.properties), or restore"
                + " one by its id: builds:snap-legacy", e.getMessage());

        SnapshotPolicy.Retention r = SnapshotPolicy.retain(all, "music", "builds", 1);
        assertEquals(List.of("snap-m1"), ids(r.delete()));
        assertTrue(r.notes().contains("not pruned: snap-legacy names no collection (taken by a Kiln before collections);"
                + " tag it with its collection to have it pruned with it"), r.notes().toString());

        // Older than the collection's newest, it changes nothing: no guess is needed.
        List<FleetSnapshot> older = List.of(new FleetSnapshot("snap-legacy", "builds", "completed", "100%", 1, T0, "i-0", "",
                true), snap("snap-m1", "music", "builds", "completed", 1));
        assertEquals("snap-m1", SnapshotPolicy.latest(older, "music", "builds").snapshot().id());
    }

    @Test
    void snapshotsWithoutKilnsMarkAreNeitherPickedNorDeleted() {
        FleetSnapshot foreign = new FleetSnapshot("snap-foreign", "builds", "completed", "100%", 1, T0.plusSeconds(900),
                "", "", false, "music");
        List<FleetSnapshot> all = List.of(snap("snap-m1", "music", "builds", "completed", 1), foreign);
        assertEquals("snap-m1", SnapshotPolicy.latest(all, "music", "builds").snapshot().id());
        assertEquals(List.of(), SnapshotPolicy.retain(all, "music", "builds", 1).delete());
    }

    @Test
    void keepBelowOneAndBadCollectionNamesAreRefused() {
        assertEquals(ExitCodes.USAGE, assertThrows(KilnException.class,
                () -> SnapshotPolicy.retain(List.of(), "music", "builds", 0)).exitCode());
        assertEquals(ExitCodes.REFUSED, assertThrows(KilnException.class,
                () -> SnapshotPolicy.retain(List.of(), "", "builds", 1)).exitCode());
        assertEquals(ExitCodes.USAGE, assertThrows(KilnException.class,
                () -> SnapshotPolicy.checkCollection("Music Box")).exitCode());
        assertEquals("music-2026", SnapshotPolicy.checkCollection("music-2026"));
    }
}
