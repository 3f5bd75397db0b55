package dev.kiln.agent.schedule;

import dev.kiln.proto.agent.v1.Schedule;
import dev.kiln.proto.agent.v1.SetScheduleRequest;

import java.time.Duration;
import java.time.Instant;

/** Schedules to and from protobuf. */
public final class ScheduleCodec {

    private ScheduleCodec() {
    }

    /** The spec a SetSchedule request asks for (not yet validated). */
    public static ScheduleSpec spec(SetScheduleRequest r) {
        return new ScheduleSpec(r.getRole(), r.hasEvery() ? Duration.ofSeconds(r.getEvery().getSeconds(), r.getEvery().getNanos())
                : null, r.getAt(), r.getKeep(), r.getPre(), r.getPost());
    }

    /** A schedule and its runs, with its mount point when it is mounted. */
    public static Schedule schedule(ScheduleState s, String mountPoint) {
        Schedule.Builder b = Schedule.newBuilder().setRole(s.spec().role()).setMountPoint(mountPoint == null ? "" : mountPoint)
                .setEvery(com.google.protobuf.Duration.newBuilder().setSeconds(s.spec().every().getSeconds())
                        .setNanos(s.spec().every().getNano()))
                .setAt(s.spec().at()).setKeep(s.spec().keep()).setPre(s.spec().pre()).setPost(s.spec().post())
                .setNextRun(timestamp(s.nextRun())).setLastOk(s.lastOk()).setLastResult(s.lastResult())
                .setLastSnapshotId(s.lastSnapshot()).setFailures(s.failures());
        if (s.lastRun() != null) {
            b.setLastRun(timestamp(s.lastRun()));
        }
        return b.build();
    }

    private static com.google.protobuf.Timestamp timestamp(Instant i) {
        return com.google.protobuf.Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
    }
}
