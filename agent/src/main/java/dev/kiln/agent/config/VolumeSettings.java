package dev.kiln.agent.config;

import io.micronaut.context.annotation.ConfigurationProperties;
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
@ConfigurationProperties(VolumeSettings.PREFIX)
public record VolumeSettings(
        @Bindable(defaultValue = "/sys") Path sysfsRoot,
        @Bindable(defaultValue = "/dev") Path devRoot,
        @Bindable(defaultValue = "2m") Duration attachTimeout,
        @Bindable(defaultValue = "10s") Duration unmountGrace,
        @Bindable(defaultValue = "30s") Duration freezeLease,
        @Bindable(defaultValue = "5m") Duration freezeMaxLease,
        @Bindable(defaultValue = "1h") Duration zeroReadTimeout) {

    static final String PREFIX = "kiln.volumes";

    static final SettingRules RULES = SettingRules.of(VolumeSettings.class, PREFIX)
            .add("sysfsRoot", "an absolute path", SettingCheck.PATH, SettingCheck::absolute)
            .add("devRoot", "an absolute path", SettingCheck.PATH, SettingCheck::absolute)
            .add("attachTimeout", "a duration such as 2m", SettingCheck.DURATION, SettingCheck::any)
            .add("unmountGrace", "a duration such as 10s", SettingCheck.DURATION, SettingCheck::any)
            .add("freezeLease", "a duration such as 30s", SettingCheck.DURATION, SettingCheck::positive)
            .add("freezeMaxLease", "a duration such as 5m", SettingCheck.DURATION, SettingCheck::positive)
            .add("zeroReadTimeout", "a duration such as 1h (0s: never read a whole device)", SettingCheck.DURATION,
                    SettingCheck::nonNegative);

    public VolumeSettings {
        RULES.check(sysfsRoot, devRoot, attachTimeout, unmountGrace, freezeLease, freezeMaxLease, zeroReadTimeout);
    }
}
