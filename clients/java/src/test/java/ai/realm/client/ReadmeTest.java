package ai.realm.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.gson.Gson;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** The README's example, compiled and run as written against the test server. */
@ExtendWith(TestServer.Extension.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ReadmeTest {
    @Test
    void readmeExampleRuns() throws Exception {
        String readme = Files.readString(TestServer.ROOT.resolve("clients/java/README.md"));
        Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(readme);
        if (!m.find()) throw new AssertionError("no ```java block in the README");
        Path dir = Files.createTempDirectory("realm-java-readme");
        Files.writeString(dir.resolve("Example.java"), m.group(1));
        String cp = location(RealmClient.class) + File.pathSeparator + location(Gson.class);
        int rc = ToolProvider.getSystemJavaCompiler().run(null, null, null, "-d", dir.toString(), "-cp", cp, dir.resolve("Example.java").toString());
        assertEquals(0, rc, "javac of the README example");
        Path java = Paths.get(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(List.of(java.toString(), "-cp", dir + File.pathSeparator + cp, "Example"))
                .redirectErrorStream(true);
        pb.environment().put("REALM_URL", TestServer.shared().url);
        pb.environment().put("REALM_API_KEY", TestServer.KEY);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the example hangs");
        }
        assertEquals(0, p.exitValue(), out);
        assertFalse(out.isBlank(), "no output");
    }

    static String location(Class<?> c) throws Exception {
        return Paths.get(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }
}
