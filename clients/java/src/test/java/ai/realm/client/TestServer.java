package ai.realm.client;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.InetAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.DoublePredicate;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The test harness. One server for the whole run ({@link #shared()}): with REALM_TEST_URL set
 * (scripts/test-clients.sh), that running realm-server, with the keys REALM_TEST_KEY,
 * REALM_TEST_LIMITED_KEY and REALM_TEST_METRICS_KEY, left running at the end. Without it, the
 * harness starts the real realm-server (REALM_SERVER_BIN, default target/debug/realm-server from
 * the repository root) on the real model (REALM_MODEL, default SmolLM2 in
 * ${REALM_CACHE_DIR:-~/.cache/realm}/models) on a free loopback port, with a tenants file of
 * SHA-256 keys (a {@code main} tenant and a {@code limited} one with requests_per_minute = 2 and
 * max_tokens = 64), polls /health, and stops it by its PID when JUnit's root context closes. S6
 * always starts its own.
 */
public final class TestServer implements AutoCloseable {
    public static final String KEY = env("REALM_TEST_KEY", "client-test-key-0123456789");
    public static final String LIMITED_KEY = env("REALM_TEST_LIMITED_KEY", "client-limited-key-abcdef");
    public static final String METRICS_KEY = env("REALM_TEST_METRICS_KEY", "client-metrics-key");

    static final Path ROOT = findRoot();
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2)).build();
    private static Path tenants;
    private static TestServer shared;
    private static Throwable sharedError;

    public final String url;
    /** The process this harness started; null for a shared server, which it never stops. */
    private final Process proc;
    private final Path log;

    static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v != null && !v.isEmpty() ? v : dflt;
    }

    private static Path findRoot() {
        Path p = Paths.get("").toAbsolutePath();
        for (Path q = p; q != null; q = q.getParent()) {
            if (Files.isDirectory(q.resolve("native-server")) && Files.isDirectory(q.resolve("clients"))) return q;
        }
        return p;
    }

    static Path cacheDir() {
        String d = System.getenv("REALM_CACHE_DIR");
        return d != null && !d.isEmpty() ? Paths.get(d) : Paths.get(System.getProperty("user.home"), ".cache", "realm");
    }

    static Path serverBin() {
        String b = System.getenv("REALM_SERVER_BIN");
        return b != null && !b.isEmpty() ? Paths.get(b) : ROOT.resolve("target/debug/realm-server");
    }

    static Path model() {
        String m = System.getenv("REALM_MODEL");
        return m != null && !m.isEmpty() ? Paths.get(m) : cacheDir().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    }

    static String sha256(String s) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    }

    static synchronized Path tenants() throws Exception {
        if (tenants == null) {
            Path dir = Files.createTempDirectory("realm-java-client");
            tenants = dir.resolve("tenants.toml");
            Files.writeString(tenants, "[[tenant]]\nname = \"main\"\nkey_sha256 = [\"" + sha256(KEY) + "\"]\n\n"
                    + "[[tenant]]\nname = \"limited\"\nkey_sha256 = [\"" + sha256(LIMITED_KEY) + "\"]\n"
                    + "requests_per_minute = 2\nmax_tokens = 64\n");
            tenants.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
        }
        return tenants;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** Starts a server and waits for /health (at most 120 s). */
    public static TestServer start(String name) throws Exception {
        Path bin = serverBin();
        if (!Files.isExecutable(bin)) throw new IllegalStateException("realm-server binary " + bin + " missing (build it, or set REALM_SERVER_BIN)");
        if (!Files.exists(model())) throw new IllegalStateException("model " + model() + " missing (scripts/fetch-models.sh, or set REALM_MODEL)");
        return new TestServer(name, freePort()).waitReady();
    }

    private TestServer(String name, int port) throws Exception {
        this.url = "http://127.0.0.1:" + port;
        this.log = Paths.get(System.getProperty("java.io.tmpdir"), name + "-" + port + ".log");
        List<String> cmd = new ArrayList<>(List.of(serverBin().toString(), "-m", model().toString(), "--host", "127.0.0.1",
                "--port", String.valueOf(port), "-t", "2", "--config", tenants().toString(), "--metrics-key", METRICS_KEY,
                "--max-running", "8", "-c", "4096"));
        this.proc = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** A running server at {@code url} that someone else started. */
    private TestServer(String url) {
        this.url = url.replaceAll("/+$", "");
        this.proc = null;
        this.log = null;
    }

    private TestServer waitReady() throws Exception {
        return waitReady(120);
    }

    private TestServer waitReady(int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (proc != null && !proc.isAlive()) throw new IllegalStateException("realm-server exited with " + proc.exitValue() + ": " + logs());
            try {
                HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/health")).timeout(Duration.ofSeconds(2)).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) return this;
            } catch (IOException ignored) {
                // not up yet
            }
            Thread.sleep(100);
        }
        if (proc != null) kill();
        throw new IllegalStateException("realm-server at " + url + " did not become ready: " + logs());
    }

    public String logs() {
        if (log == null) return "(a shared server: its log is with whoever started it)";
        try {
            String s = Files.readString(log);
            return s.length() > 4000 ? s.substring(s.length() - 4000) : s;
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** SIGTERM to its PID, then SIGKILL after 30 s; returns the exit status. A shared server: left running, 0. */
    public int stop() throws InterruptedException {
        if (proc == null) return 0;
        if (proc.isAlive()) {
            proc.destroy();
            if (!proc.waitFor(30, TimeUnit.SECONDS)) {
                proc.destroyForcibly();
                proc.waitFor();
                return -1;
            }
        }
        return proc.exitValue();
    }

    /** SIGKILL to its PID; never a shared server. */
    public void kill() throws InterruptedException {
        if (proc == null) throw new IllegalStateException("kill: not a server this harness started");
        if (proc.isAlive()) {
            proc.destroyForcibly();
            proc.waitFor();
        }
    }

    @Override
    public void close() {
        if (proc != null) proc.destroyForcibly();
    }

    /** One unlabelled sample of GET /metrics. */
    public double metric(String name) throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/metrics")).header("Authorization", "Bearer " + METRICS_KEY)
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        for (String line : r.body().split("\n")) {
            if (line.startsWith(name + " ")) return Double.parseDouble(line.substring(name.length()).trim());
        }
        return 0;
    }

    public double running() throws Exception { return metric("realm_num_requests_running"); }

    /** Polls the running gauge until pred holds or 10 s pass; returns the last value. */
    public double waitRunning(DoublePredicate pred) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            double n = running();
            if (pred.test(n) || System.nanoTime() > deadline) return n;
            Thread.sleep(50);
        }
    }

    public RealmClient client(String key) {
        return RealmClient.builder().baseUrl(url).apiKey(key).maxRetries(0).timeout(Duration.ofSeconds(120)).build();
    }

    /**
     * The run's server: REALM_TEST_URL's, or one started once and stopped (SIGTERM, exit status 0
     * expected) at the end.
     */
    public static synchronized TestServer shared() {
        if (sharedError != null) throw new IllegalStateException("no realm-server: " + sharedError, sharedError);
        if (shared == null) {
            try {
                String url = System.getenv("REALM_TEST_URL");
                shared = url != null && !url.isEmpty() ? new TestServer(url).waitReady(10) : start("realm-java-client-test");
            } catch (Throwable t) {
                sharedError = t;
                throw new IllegalStateException("no realm-server: " + t, t);
            }
        }
        return shared;
    }

    /** JUnit extension: the shared server, closed with the root context (the end of the run). */
    public static final class Extension implements BeforeAllCallback {
        @Override
        public void beforeAll(ExtensionContext ctx) {
            TestServer s = shared();
            ctx.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).getOrComputeIfAbsent("realm-server",
                    k -> (ExtensionContext.Store.CloseableResource) () -> {
                        int code = s.stop();
                        if (code != 0) throw new IllegalStateException("realm-server exited with " + code + ": " + s.logs());
                    });
        }
    }
}
