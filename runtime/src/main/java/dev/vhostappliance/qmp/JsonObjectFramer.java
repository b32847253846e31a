package dev.vhostappliance.qmp;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Splits a QMP input stream into its JSON values: QEMU's parser does not need newlines between commands (the
 * Python QMP library sends none), so values are delimited by bracket depth, with strings (double- and
 * single-quoted, as QEMU accepts both) and escapes taken into account. Bounded: a value over the limit is an
 * error and the stream is skipped to its end.
 */
final class JsonObjectFramer {
    static final int MAX_VALUE = 1 << 20;
    private final InputStream in;

    JsonObjectFramer(InputStream in) {
        this.in = in;
    }

    /** The next value's text, or null at end of stream; IOException("too large") past MAX_VALUE. */
    String next() throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int depth = 0;
        int quote = 0;
        boolean escape = false;
        boolean tooLarge = false;
        for (int c = in.read(); c >= 0; c = in.read()) {
            if (depth == 0 && quote == 0 && Character.isWhitespace(c)) {
                continue;
            }
            if (!tooLarge) {
                buf.write(c);
                tooLarge = buf.size() > MAX_VALUE;
            }
            if (quote != 0) {
                if (escape) {
                    escape = false;
                } else if (c == '\\') {
                    escape = true;
                } else if (c == quote) {
                    quote = 0;
                }
                continue;
            }
            if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            }
            if (depth <= 0) {
                if (tooLarge) {
                    throw new IOException("QMP input over " + MAX_VALUE + " bytes");
                }
                return buf.toString(java.nio.charset.StandardCharsets.UTF_8);
            }
        }
        return buf.size() == 0 ? null : buf.toString(java.nio.charset.StandardCharsets.UTF_8);
    }
}
