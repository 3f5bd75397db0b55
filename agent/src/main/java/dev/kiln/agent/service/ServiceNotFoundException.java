package dev.kiln.agent.service;

import java.util.List;

/** A log or service was asked for by a name this agent does not have. */
public final class ServiceNotFoundException extends RuntimeException {

    public ServiceNotFoundException(String message) {
        super(message);
    }

    /** No service of this name; says which there are. */
    static ServiceNotFoundException named(String name, List<String> names) {
        return new ServiceNotFoundException("no service '" + name + "' on this agent ("
                + (names.isEmpty() ? "kiln.services declares none" : "its services: " + String.join(", ", names)) + ")");
    }
}
