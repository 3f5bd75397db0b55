package dev.kiln.agent.volume;

import dev.kiln.proto.agent.v1.MountRequest;
import dev.kiln.proto.agent.v1.MountResponse;
import dev.kiln.proto.agent.v1.Volume;

import java.nio.file.Path;
import java.time.Duration;

/** Converts volume requests and answers to and from the contract's messages. */
public final class VolumeCodec {

    private VolumeCodec() {
    }

    /** The spec a Mount request asks for (validated by the mounter). */
    public static MountSpec spec(MountRequest r) {
        boolean overlay = r.hasOverlay() && (!r.getOverlay().getLowerDir().isEmpty() || !r.getOverlay().getUpperDir().isEmpty());
        return new MountSpec(new VolumeRef(r.getVolumeId(), r.getDeviceHint()), path(r.getMountPoint()),
                Filesystem.parse(r.getFilesystem()), r.getReadOnly(), r.getNoexec(), r.getNoatime(), r.getAllowFormat(),
                r.getLabel(), r.hasWait() ? duration(r.getWait()) : null,
                overlay ? path(r.getOverlay().getLowerDir()) : null, overlay ? path(r.getOverlay().getUpperDir()) : null);
    }

    public static MountResponse response(MountResult r) {
        return MountResponse.newBuilder().setVolume(volume(r.volume())).setFormatted(r.formatted())
                .setAlreadyMounted(r.alreadyMounted()).setGrown(r.grown()).build();
    }

    public static Volume volume(VolumeInfo v) {
        Volume.Builder b = Volume.newBuilder()
                .setDevice(v.device())
                .setVolumeId(v.volumeId())
                .setSizeBytes(v.sizeBytes())
                .setFilesystem(v.filesystem())
                .setLabel(v.label())
                .setMountPoint(v.mountPoint() == null ? "" : v.mountPoint().toString())
                .addAllMountOptions(v.options())
                .setDecisionReason(v.reason())
                .setFrozen(v.frozen());
        if (v.decision() != null) {
            b.setFormatDecision(dev.kiln.proto.agent.v1.FormatDecision.valueOf("FORMAT_DECISION_" + v.decision().name()));
        }
        return b.build();
    }

    /** A path from a request; empty stays null so validation names the missing field. */
    public static Path path(String s) {
        if (s == null || s.isEmpty()) {
            return null;
        }
        try {
            return Path.of(s);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + s + "' is not a path");
        }
    }

    public static Duration duration(com.google.protobuf.Duration d) {
        return Duration.ofSeconds(d.getSeconds(), d.getNanos());
    }
}
