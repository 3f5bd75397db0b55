package dev.kiln.agent.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The plain domain decisions: tree resolution, the rsync argument policy, authorized_keys parsing. */
class ServePolicyTest {

    @TempDir
    Path tmp;

    ServedTree tree(UserKind kind) throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out/a/b"));
        Files.createDirectories(tmp.resolve("src"));
        return ServedTree.of(kind, tmp.resolve("out"), tmp.resolve("src"));
    }

    /** Where a path of the tree lands, as a real path (the entry reached, then let go). */
    static Path landsOn(ServedTree t, String path, boolean follow) throws Exception {
        try (ServedTree.Located r = t.locate(path, follow)) {
            Path holder = Files.readSymbolicLink(r.entry().directory());
            return r.entry().name().equals(".") ? holder : holder.resolve(r.entry().name());
        }
    }

    @Test
    void dotDotStopsAtTheRootAndLinksMustStayInTheirArea() throws Exception {
        ServedTree t = tree(UserKind.OWNER);
        Path out = tmp.resolve("out").toRealPath();
        assertEquals(out.resolve("a/b"), landsOn(t, "/../../outputs/a/./b", true));
        assertEquals(out, landsOn(t, "/outputs", true));
        try (ServedTree.Located r = t.locate("/outputs/a/b/../b", true)) {
            assertEquals("/outputs/a/b", r.virtualPath());
        }
        Files.createSymbolicLink(out.resolve("a/up"), Path.of("../.."));
        Files.createSymbolicLink(out.resolve("a/abs"), out.resolve("a/b"));
        Files.createSymbolicLink(out.resolve("a/etc"), Path.of("/etc"));
        Files.createSymbolicLink(out.resolve("a/loop"), Path.of("loop"));
        Files.createSymbolicLink(out.resolve("a/bdot"), Path.of("b/.."));
        assertThrows(AccessDeniedException.class, () -> t.locate("/outputs/a/up/src", true));
        assertEquals(out.resolve("a/b"), landsOn(t, "/outputs/a/abs", true));
        assertEquals(out.resolve("a"), landsOn(t, "/outputs/a/bdot", true));
        assertThrows(AccessDeniedException.class, () -> t.locate("/outputs/a/etc/passwd", true));
        assertEquals(out.resolve("a/etc"), landsOn(t, "/outputs/a/etc", false), "not followed when asked not to");
        assertThrows(java.nio.file.FileSystemLoopException.class, () -> t.locate("/outputs/a/loop", true));
        assertThrows(NoSuchFileException.class, () -> t.locate("/etc/passwd", true));
        try (ServedTree.Located r = t.locate("/sources", true)) {
            assertTrue(r.writable());
        }
        try (ServedTree.Located r = t.locate("/outputs/a", true)) {
            assertFalse(r.writable());
        }
        assertTrue(tree(UserKind.READER).area("sources").isEmpty(), "readers have no sources area");
    }

    @Test
    void rsyncPolicyAllowsWhatClientsSendAndRefusesTheRest() throws Exception {
        ServedTree owner = tree(UserKind.OWNER);
        ServedTree reader = tree(UserKind.READER);
        RsyncPolicy.Decision d = RsyncPolicy.check(UserKind.READER, reader,
                List.of("rsync", "--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--partial", ".", "/outputs/a/"));
        assertTrue(d.sender());
        assertEquals(List.of("rsync", "--server", "--sender", "-vlogDtpre.iLsfxCIvu", "--partial", ".", "/outputs/a/"), d.argv());
        RsyncPolicy.Decision up = RsyncPolicy.check(UserKind.OWNER, owner,
                List.of("rsync", "--server", "-logDtpre.iLsfxCIvu", ".", "sources/x"));
        assertEquals(List.of("rsync", "--server", "--safe-links", "-logDtpre.iLsfxCIvu", ".", "/sources/x"), up.argv());
        for (List<String> bad : List.of(
                List.of("rsync", "--server", "-logDtpre.iLsfxCIvu", ".", "/outputs/x"),
                List.of("rsync", "--server", "--sender", "-Le.iLsfxCIvu", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "-ke.iLsfxCIvu", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "-se.iLsfxCIvu", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "--log-file=/tmp/x", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "--files-from=/etc/passwd", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "--remove-source-files", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "--partial-dir=/tmp", ".", "/outputs/"),
                List.of("rsync", "--server", "--sender", "-e.iLsfxCIvu", ".", "/outputs/../etc"),
                List.of("rsync", "--server", "--sender", "-e.iLsfxCIvu", ".", "/"),
                List.of("rsync", "--server", "--sender", "-e.iLsfxCIvu", ".", "/out*"),
                List.of("rsync", "--server", "--sender", "-e.iLsfxCIvu", ".", "/usr"),
                List.of("rsync", "--daemon"),
                List.of("rsync", "--server", "--sender", "-e.iLsfxCIvu", "."))) {
            assertThrows(RsyncPolicy.Refused.class, () -> RsyncPolicy.check(UserKind.READER, reader, bad), bad.toString());
            assertThrows(RsyncPolicy.Refused.class, () -> RsyncPolicy.check(UserKind.OWNER, owner, bad), bad.toString());
        }
    }

    @Test
    void commandWordsSplitLikeAShellButRefuseShellSyntax() {
        assertEquals(List.of("rsync", "--server", "a b", "c'd"), CommandWords.split("rsync  --server a\\ b \"c'd\""));
        assertEquals(List.of("x", "it's"), CommandWords.split("x 'it'\\''s'"));
        for (String bad : List.of("a; b", "a | b", "a && b", "$(id)", "`id`", "a > b", "\"$HOME\"")) {
            assertThrows(IllegalArgumentException.class, () -> CommandWords.split(bad), bad);
        }
    }

    @Test
    void authorizedKeysFailClosed() {
        String ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone";
        assertEquals(1, AuthorizedKeys.parse("t", "# comment\n\n" + ed + "\n").keys().size());
        assertTrue(AuthorizedKeys.parse("t", ed + "\nssh-ed25519 %%%\n").problem().isPresent());
        assertTrue(AuthorizedKeys.parse("t", "from=\"10.0.0.1\" " + ed).problem().get().contains("from"));
        assertTrue(AuthorizedKeys.parse("t", "command=\"/bin/sh\" " + ed).problem().isPresent());
        assertEquals(1, AuthorizedKeys.parse("t", "restrict,no-pty " + ed).keys().size());
        assertTrue(AuthorizedKeys.parse("t", "ssh-dss AAAAB3NzaC1kc3MAAACBAP== x").problem().isPresent());
        assertTrue(new AuthorizedKeys("kiln.ssh.owner-keys", "/nonexistent/keys").load().problem().get().contains("cannot read"));
        assertTrue(new AuthorizedKeys("kiln.ssh.owner-keys", null).load().keys().isEmpty());
    }

    @Test
    void servingSettingsAreCheckedAndNameTheKey() throws Exception {
        var problems = dev.kiln.agent.config.SettingsCatalog.problems("agent.yml", java.util.Map.of(
                "kiln.ssh.enabled", "yes", "kiln.ssh.port", "70000", "kiln.ssh.outputs", "relative/dir",
                "kiln.ssh.owner-keys", "keys.txt", "kiln.ssh.reader-keys", "ssh-ed25519 AAAA x", "kiln.ssh.prot", "22"));
        String all = String.join("\n", problems);
        assertEquals(5, problems.size(), all);
        for (String key : List.of("kiln.ssh.enabled", "kiln.ssh.port", "kiln.ssh.outputs", "kiln.ssh.owner-keys")) {
            assertTrue(all.contains("'" + key + "'"), key + ": " + all);
        }
        assertTrue(all.contains("did you mean 'kiln.ssh.port'"), all);

        var serving = new Serving(new dev.kiln.agent.config.SshSettings(true, null, 0, null, null, null, null, null, null, null),
                new dev.kiln.agent.config.AgentSettings(dev.kiln.agent.config.AgentMode.LOCAL, tmp, "", null, null),
                new dev.kiln.agent.config.BuildSettings(null, null, java.time.Duration.ofSeconds(1)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, serving::start);
        assertTrue(e.getMessage().contains("kiln.ssh.outputs is not set"), e.getMessage());
        var disabled = new Serving(new dev.kiln.agent.config.SshSettings(false, null, null, null, null, null, null, null, null, null),
                new dev.kiln.agent.config.AgentSettings(dev.kiln.agent.config.AgentMode.LOCAL, tmp, "", null, null),
                new dev.kiln.agent.config.BuildSettings(null, null, java.time.Duration.ofSeconds(1)));
        disabled.start();
        assertTrue(disabled.server().isEmpty(), "not serving unless enabled");
    }

    @Test
    void keysCanComeInlineInUserData() {
        String userData = """
                kiln:
                  ssh:
                    enabled: true
                    outputs: /srv/work
                    owner-keys: |
                      ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop
                      ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other
                """;
        var settings = dev.kiln.agent.instance.UserData.settings(userData).orElseThrow();
        assertEquals(List.of(), dev.kiln.agent.config.SettingsCatalog.problems("EC2 user data", settings));
        String keys = String.valueOf(settings.get("kiln.ssh.owner-keys"));
        assertFalse(AuthorizedKeys.isPath(keys));
        assertEquals(2, new AuthorizedKeys("kiln.ssh.owner-keys", keys).load().keys().size());
    }
}
