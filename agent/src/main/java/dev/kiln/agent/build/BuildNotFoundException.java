package dev.kiln.agent.build;

/** No build has this id. */
public class BuildNotFoundException extends RuntimeException {

    public BuildNotFoundException(String id) {
        super("no build with id '" + id + "' (kiln builds lists them)");
    }
}
