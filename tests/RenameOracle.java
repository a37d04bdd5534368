// Test fixture for tests/test_rename.py: the reference behaviour of Elasticsearch's index rename.
//
// Run as a single-file program: java RenameOracle.java cases.tsv
// Each input line is "id<TAB>text<TAB>pattern<TAB>replacement"; each output line is
// "id<TAB>ok<TAB>result" or "id<TAB>error<TAB>ExceptionClass<TAB>message".
// Fields are escaped: a backslash is written as two, tab/newline/carriage return as backslash + t/n/r,
// and every other character outside printable ASCII as backslash + "u" + four hex digits (a UTF-16 unit).
// The rename itself is exactly what Elasticsearch's RestoreService does: text.replaceAll(pattern, replacement).

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

public class RenameOracle {
    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        try (BufferedReader in = Files.newBufferedReader(Path.of(args[0]), StandardCharsets.UTF_8)) {
            String line;
            while ((line = in.readLine()) != null) {
                String[] fields = line.split("\t", -1);
                String result;
                try {
                    String renamed = unescape(fields[1]).replaceAll(unescape(fields[2]), unescape(fields[3]));
                    result = "ok\t" + escape(renamed);
                } catch (RuntimeException | StackOverflowError e) {
                    result = "error\t" + e.getClass().getSimpleName() + "\t" + escape(String.valueOf(e.getMessage()));
                }
                out.print(fields[0] + "\t" + result + "\n");
            }
        }
        out.flush();
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\') {
                b.append("\\\\");
            } else if (c == '\t') {
                b.append("\\t");
            } else if (c == '\n') {
                b.append("\\n");
            } else if (c == '\r') {
                b.append("\\r");
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\') {
                b.append(c);
                continue;
            }
            char k = s.charAt(++i);
            switch (k) {
                case 't' -> b.append('\t');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 'u' -> {
                    b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16));
                    i += 4;
                }
                default -> b.append(k);
            }
        }
        return b.toString();
    }
}
