package dev.kiln.controller.ui;

import io.micronaut.http.HttpRequest;

import java.io.PrintStream;
import java.time.Clock;
import java.time.temporal.ChronoUnit;

/** One line on stderr per action and per refused request: when, from where, what, and how it ended. */
final class UiAudit {

    private final PrintStream err;
    private final Clock clock;

    UiAudit(PrintStream err, Clock clock) {
        this.err = err;
        this.clock = clock;
    }

    void action(HttpRequest<?> request, String what, String result) {
        line(request, what + ": " + result);
    }

    void refused(HttpRequest<?> request, int status, String reason) {
        line(request, "refused " + request.getMethodName() + " " + request.getPath() + " (" + status + "): " + reason);
    }

    private void line(HttpRequest<?> request, String text) {
        String from = request.getRemoteAddress().getAddress() == null ? request.getRemoteAddress().getHostString()
                : request.getRemoteAddress().getAddress().getHostAddress();
        // One println: lines from parallel requests do not interleave.
        err.println("kiln ui: audit " + clock.instant().truncatedTo(ChronoUnit.SECONDS) + " " + from + " "
                + text.replace('\n', ' ').replace('\r', ' '));
    }
}
