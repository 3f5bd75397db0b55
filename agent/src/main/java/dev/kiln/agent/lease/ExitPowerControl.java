package dev.kiln.agent.lease;

/** Local mode's "power off": the agent process ends (its shutdown hook closes everything). */
public final class ExitPowerControl implements PowerControl {

    private final Runnable exit;

    public ExitPowerControl(Runnable exit) {
        this.exit = exit;
    }

    @Override
    public void powerOff() {
        exit.run();
    }

    @Override
    public String describe() {
        return "end the agent process";
    }
}
