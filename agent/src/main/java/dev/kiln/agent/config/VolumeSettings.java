package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Introspected;
import io.micronaut.core.bind.annotation.Bindable;

import java.nio.file.Path;
import java.time.Duration;

/**
 * How the agent finds, mounts and freezes volumes ({@code kiln.volumes.*}). The boot-time mounts
 * ({@code kiln.volumes.mounts}, a list) are read by {@link VolumeMountSettings}.
 *
 * @param sysfsRoot      where sysfs is mounted (tests point it at a fake tree)
 * @param devRoot        where device nodes live
 * @param attachTimeout  how long a mount waits for a volume that has not appeared yet
 * @param unmountGrace   time between TERM and KILL for processes holding a mount
 * @param freezeLease    how long a freeze lasts when the request does not say
 * @param freezeMaxLease the longest freeze lease a request may ask for
 * @param zeroReadTimeout how long formatting may spend reading a whole device to prove it all
 *                       zeros when nothing else proves it blank; zero turns the read off
 */
@Introspected
@ConfigurationProperties("kiln.volumes")
public record VolumeSettings(
        @Accepts("an absolute path") @AbsolutePath @Bindable(defaultValue = "/sys") Path sysfsRoot,
        @Accepts("an absolute path") @AbsolutePath @Bindable(defaultValue = "/dev") Path devRoot,
        @Accepts("a duration such as 2m") @Bindable(defaultValue = "2m") Duration attachTimeout,
        @Accepts("a duration such as 10s") @Bindable(defaultValue = "10s") Duration unmountGrace,
        @Accepts("a duration such as 30s") @PositiveDuration @Bindable(defaultValue = "30s") Duration freezeLease,
        @Accepts("a duration such as 5m") @PositiveDuration @Bindable(defaultValue = "5m") Duration freezeMaxLease,
        @Accepts("a duration such as 1h (0s: never read a whole device)") @NonNegativeDuration
        @Bindable(defaultValue = "1h") Duration zeroReadTimeout) {
}
