package dev.kiln.controller.cli;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import dev.kiln.proto.agent.v1.Build;
import dev.kiln.proto.agent.v1.Service;
import dev.kiln.proto.agent.v1.ServiceState;
import dev.kiln.proto.agent.v1.StatusResponse;

import java.util.List;
import java.util.Locale;

/**
 * An instance's services and boot script as the CLI shows them: each service's link,
 * {@code http://HOST:PORT/PATH}, where HOST is the address that reaches the instance's agent
 * (the same --address rule), and the boot script's state with its exit status.
 */
public final class ServiceLinks {

    private ServiceLinks() {
    }

    /** {@code http://HOST:PORT/PATH} (an IPv6 HOST in brackets). */
    public static String url(String host, Service s) {
        String path = s.getPath().isEmpty() ? "/" : s.getPath();
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + s.getPort()
                + (path.startsWith("/") ? path : "/" + path);
    }

    /** A service's state in lower case: waiting, starting, running, restarting, failed, stopped, external. */
    static String state(Service s) {
        return s.getState() == ServiceState.SERVICE_STATE_UNSPECIFIED ? ""
                : s.getState().name().replace("SERVICE_STATE_", "").toLowerCase(Locale.ROOT);
    }

    /** Whether the link should answer: a running service, or a declared one whose port is open. */
    static boolean up(Service s) {
        return s.getState() == ServiceState.SERVICE_STATE_RUNNING
                || s.getState() == ServiceState.SERVICE_STATE_EXTERNAL && s.getPortOpen();
    }

    /** The links cell of {@code kiln ls -o wide}: NAME=URL, with the state after a link that should not answer yet. */
    static String cell(String host, StatusResponse status) {
        if (status == null || host == null) {
            return "";
        }
        return String.join(" ", status.getServicesList().stream()
                .map(s -> s.getName() + "=" + url(host, s) + (up(s) ? "" : "(" + state(s) + ")")).toList());
    }

    /** The boot script's state, e.g. "running", "succeeded (exit 0)", "failed (exit 3)"; "" when there is none. */
    static String boot(StatusResponse status) {
        if (status == null || !status.hasBootScript()) {
            return "";
        }
        Build b = status.getBootScript();
        return BuildCommand.state(b) + (b.getHasExitCode() ? " (exit " + b.getExitCode() + ")" : "");
    }

    /** Whether the boot script ended without success (failed, cancelled, interrupted). */
    static boolean bootFailed(StatusResponse status) {
        if (status == null || !status.hasBootScript()) {
            return false;
        }
        return switch (status.getBootScript().getState()) {
            case BUILD_STATE_FAILED, BUILD_STATE_CANCELLED, BUILD_STATE_INTERRUPTED -> true;
            default -> false;
        };
    }

    /** The {@code links} array of {@code kiln ls -o json}: name, url, state, port_open of each service. */
    static JsonArray json(String host, StatusResponse status) {
        JsonArray a = new JsonArray();
        if (status == null || host == null) {
            return a;
        }
        for (Service s : status.getServicesList()) {
            JsonObject o = new JsonObject();
            o.addProperty("name", s.getName());
            o.addProperty("url", url(host, s));
            o.addProperty("state", state(s));
            o.addProperty("port_open", s.getPortOpen());
            a.add(o);
        }
        return a;
    }

    /** The {@code boot} object of {@code kiln ls -o json}: state and exit_code (null until it ends), or null without a boot script. */
    static JsonElement bootJson(StatusResponse status) {
        if (status == null || !status.hasBootScript()) {
            return JsonNull.INSTANCE;
        }
        Build b = status.getBootScript();
        JsonObject o = new JsonObject();
        o.addProperty("id", b.getId());
        o.addProperty("state", BuildCommand.state(b));
        if (b.getHasExitCode()) {
            o.addProperty("exit_code", b.getExitCode());
        } else {
            o.add("exit_code", JsonNull.INSTANCE);
        }
        return o;
    }

    /** A service's row in {@code kiln status}: state, pid, restarts, port, link, and why when it is not running. */
    static String describe(String host, Service s) {
        StringBuilder b = new StringBuilder(state(s));
        if (s.getPid() != 0) {
            b.append(", pid ").append(s.getPid());
        }
        if (!s.getCommand().isEmpty()) {
            b.append(", ").append(s.getRestarts()).append(s.getRestarts() == 1 ? " restart" : " restarts");
        }
        b.append(", port ").append(s.getPort()).append(s.getPortOpen() ? " open" : " closed");
        if (s.getKeepsAlive()) {
            b.append(", keeps alive");
        }
        b.append(", ").append(url(host, s));
        if (!s.getDetail().isEmpty()) {
            b.append(" (").append(s.getDetail()).append(')');
        }
        return b.toString();
    }

    /** The names of an instance's services, for messages. */
    static List<String> names(StatusResponse status) {
        return status.getServicesList().stream().map(Service::getName).toList();
    }
}
