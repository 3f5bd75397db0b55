package dev.kiln.agent.build;

import com.google.protobuf.Timestamp;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.CommandBuild;
import dev.kiln.proto.agent.v1.Profile;
import dev.kiln.proto.agent.v1.Progress;
import dev.kiln.proto.agent.v1.StartBuildRequest;
import dev.kiln.proto.agent.v1.TupBuild;

import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Converts builds to and from the contract's messages. Build records are persisted in the same
 * encoding: the contract is versioned, so old records stay readable.
 */
public final class BuildCodec {

    private BuildCodec() {
    }

    /** The spec a StartBuild request asks for (unvalidated). */
    public static BuildSpec spec(StartBuildRequest r) {
        boolean tup = r.getKindCase() != StartBuildRequest.KindCase.COMMAND;
        List<BuildSpec.Profile> defs = r.getTup().getProfileDefinitionsList().stream()
                .map(p -> new BuildSpec.Profile(p.getName(), Map.copyOf(p.getConfigMap()))).toList();
        return new BuildSpec(r.getWorkTree().isEmpty() ? null : Path.of(r.getWorkTree()), tup,
                List.copyOf(r.getTup().getProfilesList()), defs,
                List.copyOf(r.getCommand().getArgvList()), Map.copyOf(r.getCommand().getEnvMap()),
                r.getQueue(), r.getRequestId(), Map.copyOf(r.getLabelsMap()));
    }

    public static StartBuildRequest request(BuildSpec s) {
        StartBuildRequest.Builder b = StartBuildRequest.newBuilder()
                .setWorkTree(s.workTree().toString())
                .setQueue(s.queue())
                .setRequestId(s.requestId())
                .putAllLabels(s.labels());
        if (s.tup()) {
            TupBuild.Builder t = TupBuild.newBuilder().addAllProfiles(s.profiles());
            s.profileDefinitions().forEach(p -> t.addProfileDefinitions(
                    Profile.newBuilder().setName(p.name()).putAllConfig(p.config())));
            b.setTup(t);
        } else {
            b.setCommand(CommandBuild.newBuilder().addAllArgv(s.argv()).putAllEnv(s.env()));
        }
        return b.build();
    }

    public static Build build(BuildRecord r) {
        Build.Builder b = Build.newBuilder()
                .setId(r.id())
                .setRequest(request(r.spec()))
                .setState(dev.kiln.proto.agent.v1.BuildState.valueOf("BUILD_STATE_" + r.state().name()))
                .setCreatedAt(ts(r.createdAt()))
                .setProgress(Progress.newBuilder().setDone(r.done()).setTotal(r.total()))
                .setLogSizeBytes(r.logSize());
        if (r.startedAt() != null) {
            b.setStartedAt(ts(r.startedAt()));
        }
        if (r.endedAt() != null) {
            b.setEndedAt(ts(r.endedAt()));
        }
        if (r.exitCode() != null) {
            b.setHasExitCode(true).setExitCode(r.exitCode());
        }
        return b.build();
    }

    public static BuildRecord record(Build b) {
        return new BuildRecord(b.getId(), spec(b.getRequest()),
                BuildState.valueOf(b.getState().name().substring("BUILD_STATE_".length())),
                instant(b.getCreatedAt()), b.hasStartedAt() ? instant(b.getStartedAt()) : null,
                b.hasEndedAt() ? instant(b.getEndedAt()) : null, b.getHasExitCode() ? b.getExitCode() : null,
                b.getProgress().getDone(), b.getProgress().getTotal(), b.getLogSizeBytes());
    }

    static Timestamp ts(Instant i) {
        return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
    }

    static Instant instant(Timestamp t) {
        return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
    }
}
