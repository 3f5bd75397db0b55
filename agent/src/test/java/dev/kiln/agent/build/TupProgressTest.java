package dev.kiln.agent.build;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class TupProgressTest {

    /** Lines as tup 0.7 prints them when its output is a pipe (captured on Debian 12). */
    static final List<String> SAMPLE = List.of(
            "[ tup ] [0.001s] Scanning filesystem...",
            "[ tup ] [0.005s] Reading in new configuration/environment variables...",
            " 100% 0) new variant: build-x/tup.config",
            "[ tup ] [0.006s] Parsing Tupfiles...",
            " 100% 0) [0.003s] build-x",
            "[ tup ] [0.012s] No files to delete.",
            "[ tup ] [0.014s] Executing Commands...",
            " ~20% 4) [0.210s] build-x: sleep 0.2; tr a-z A-Z < f2.txt > f2.up",
            "some output of the command",
            " ~40% 3) [0.212s] build-x: sleep 0.2; tr a-z A-Z < f1.txt > f1.up",
            " ~60% 2) [0.208s] build-x: sleep 0.2; tr a-z A-Z < f3.txt > f3.up",
            " ~80% 1) [0.209s] build-x: sleep 0.2; tr a-z A-Z < f4.txt > f4.up",
            " 100% 0) [0.207s] build-x: sleep 0.2; tr a-z A-Z < f5.txt > f5.up",
            "[ tup ] [0.643s] Updated.");

    @Test
    void countsCommandsDoneOfTotalWhileExecutingOnly() {
        TupProgress p = new TupProgress();
        List<TupProgress.Count> counts = new ArrayList<>();
        SAMPLE.forEach(l -> p.line(l).ifPresent(counts::add));
        assertEquals(List.of(new TupProgress.Count(1, 5), new TupProgress.Count(2, 5), new TupProgress.Count(3, 5),
                new TupProgress.Count(4, 5), new TupProgress.Count(5, 5)), counts);
    }

    @Test
    void countsAFailedCommandAndPaddedNumbers() {
        TupProgress p = new TupProgress();
        p.line("[ tup ] [0.273s] Executing Commands...");
        assertEquals(new TupProgress.Count(1, 72), p.line(" ~ 1% 71) [0.016s] build-mp3/a/b: m3u b.m3u").orElseThrow());
        assertEquals(new TupProgress.Count(55, 72), p.line("* ~ 5% 17) build-bad/a/b: lame 01-x.wav").orElseThrow());
        assertEquals(new TupProgress.Count(72, 72), p.line(" 100%  0) [0.042s] build-flac/k/g: flac 03.wav").orElseThrow());
    }

    @Test
    void nothingToDoIsZeroOfZero() {
        TupProgress p = new TupProgress();
        assertEquals(new TupProgress.Count(0, 0),
                p.line("[ tup ] [0.000s] No commands to execute.").orElseThrow());
    }
}
