package dev.kiln.controller.cli;

import jakarta.inject.Inject;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code kiln completion}: print a bash/zsh completion script. */
@Command(name = "completion", mixinStandardHelpOptions = true,
        description = {"Print a bash (and zsh) completion script for kiln.",
                "It completes commands and options, and asks kiln for instance ids and for the profiles",
                "an instance holds (kiln pull ID <TAB>). Use: source <(kiln completion)"})
public class CompletionCommand implements Runnable {

    @Inject
    Context context;

    @Spec
    CommandSpec spec;

    /**
     * After picocli's completions, the words only the fleet knows, asked from the same kiln
     * (bin/kiln or kiln): instance ids where a command takes an INSTANCE or --agent, and the
     * profiles of the instance named before PROFILE in {@code kiln pull}.
     */
    static final String DYNAMIC = """

            # Instance ids and profiles, from `kiln __complete` (the fleet knows them, not this script).
            function _kiln_complete_fleet() {
              _complete_kiln "$@"
              local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd=${COMP_WORDS[1]} words=
              [[ $cur == -* ]] && return
              local IFS=$'\n'
              if [[ $prev == --agent ]]; then
                words=$("${COMP_WORDS[0]}" __complete instances 2>/dev/null)
              elif (( COMP_CWORD == 2 )); then
                case $cmd in
                  status|extend|stop|terminate|snapshot|ssh-config|enroll|open) words=$("${COMP_WORDS[0]}" __complete instances 2>/dev/null) ;;
                  pull) words=$("${COMP_WORDS[0]}" __complete instances 2>/dev/null; "${COMP_WORDS[0]}" __complete profiles 2>/dev/null) ;;
                esac
              elif (( COMP_CWORD == 3 )) && [[ $cmd == pull && ${COMP_WORDS[2]} == @(local-*|i-*) ]]; then
                words=$("${COMP_WORDS[0]}" __complete profiles "${COMP_WORDS[2]}" 2>/dev/null)
              elif (( COMP_CWORD == 3 )) && [[ $cmd == push ]]; then
                words=$("${COMP_WORDS[0]}" __complete instances 2>/dev/null)
              fi
              [[ -n $words ]] && COMPREPLY+=( $(compgen -W "$words" -- "$cur") )
            }
            complete -F _kiln_complete_fleet -o default kiln kiln.sh kiln.bash bin/kiln ./bin/kiln
            """;

    @Override
    public void run() {
        context.out().print(AutoComplete.bash("kiln", spec.root().commandLine()));
        context.out().print(DYNAMIC);
    }
}
