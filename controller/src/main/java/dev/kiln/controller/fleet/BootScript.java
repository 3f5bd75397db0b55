package dev.kiln.controller.fleet;

import dev.kiln.controller.ExitCodes;
import dev.kiln.controller.KilnException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A boot script as {@code kiln launch --boot-script FILE} reads it: the text of a regular file,
 * UTF-8, at most {@link AgentUserData#MAX_BYTES} (EC2's whole user data; on EC2 the launch then
 * checks that it fits beside Kiln's own settings, {@link AgentUserData#yaml}).
 *
 * @param file where it was read from (for messages)
 * @param text the script
 */
public record BootScript(Path file, String text) {

    /** Reads FILE, refusing (USAGE, nothing launched) what cannot be a boot script, with the reason. */
    public static BootScript read(Path file) {
        String given = "--boot-script " + file;
        if (Files.isDirectory(file)) {
            throw new KilnException(ExitCodes.USAGE, given + " is a directory; give the script file itself");
        }
        if (!Files.exists(file)) {
            throw new KilnException(ExitCodes.USAGE, given + ": no such file");
        }
        if (!Files.isRegularFile(file)) {
            throw new KilnException(ExitCodes.USAGE, given + " is not a regular file (a device, pipe or socket); give a script file");
        }
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            // One byte past the limit is enough to know it is too large.
            bytes = in.readNBytes(AgentUserData.MAX_BYTES + 1);
        } catch (IOException e) {
            throw new KilnException(ExitCodes.USAGE, given + " cannot be read (" + e.getMessage() + "); check its permissions", e);
        }
        if (bytes.length > AgentUserData.MAX_BYTES) {
            throw new KilnException(ExitCodes.USAGE, given + " is larger than " + AgentUserData.MAX_BYTES + " bytes, all the"
                    + " user data EC2 takes; nothing was launched: keep the boot script short and let it fetch the rest (git"
                    + " clone, a volume)");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new KilnException(ExitCodes.USAGE, given + " is not UTF-8 text; a boot script is a /bin/sh script");
        }
        if (text.indexOf('\0') >= 0) {
            throw new KilnException(ExitCodes.USAGE, given + " holds a NUL byte; a boot script is a /bin/sh script, not a binary");
        }
        return new BootScript(file, text);
    }
}
