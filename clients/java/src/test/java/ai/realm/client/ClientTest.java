package ai.realm.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/** The rest of the client's surface, and bad input (a fake server that answers garbage). */
@ExtendWith(TestServer.Extension.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ClientTest {
    RealmClient client() { return TestServer.shared().client(TestServer.KEY); }

    @Test
    void modelsHealthAndCompletions() throws Exception {
        RealmClient c = client();
        assertEquals("ok", c.health());
        List<Model> models = c.models();
        assertFalse(models.isEmpty());
        Completion whole = c.complete(CompletionRequest.of("1, 2, 3, 4,").maxTokens(8).temperature(0));
        assertFalse(whole.text().isEmpty());
        StringBuilder b = new StringBuilder();
        try (RealmStream<Completion> s = c.completeStream(CompletionRequest.of("1, 2, 3, 4,").maxTokens(8).temperature(0))) {
            s.stream().forEach(ch -> { if (ch.choices != null) for (Completion.Choice x : ch.choices) if (x.text != null) b.append(x.text); });
        }
        assertEquals(whole.text(), b.toString());
        try (RealmConnection conn = c.connect()) {
            assertEquals(models.get(0).id, conn.hello().model);
            Result r = conn.complete(CompletionRequest.of("1, 2, 3, 4,").maxTokens(8).temperature(0)).await();
            assertEquals(whole.text(), r.text());
            assertEquals(whole.choices.get(0).finish_reason, r.finishReason());
        }
    }

    @Test
    void badRequestNamesTheField() throws Exception {
        RealmClient c = client();
        BadRequestException e = assertThrows(BadRequestException.class, () -> c.chat(new ChatRequest().user("hi").temperature(5)));
        assertEquals(400, e.status());
        assertEquals("invalid_request", e.code());
        assertNotNull(e.param());
        assertTrue(e.param().contains("temperature"), e.param());
        assertThrows(BadRequestException.class, () -> c.chatStream(new ChatRequest().user("hi").temperature(5)));
        assertThrows(NotFoundException.class, () -> c.chat(new ChatRequest().user("hi").model("no-such-model").maxTokens(2)));
        try (RealmConnection conn = c.connect()) {
            ExecutionException ee = assertThrows(ExecutionException.class,
                    () -> conn.chat(new ChatRequest().user("hi").temperature(5)).result().get(10, TimeUnit.SECONDS));
            assertTrue(ee.getCause() instanceof BadRequestException, ee.getCause().toString());
            assertEquals("request.temperature", ((BadRequestException) ee.getCause()).param());
            assertEquals("ok", conn.ping("ok").get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void closingAConnectionFailsItsRequests() throws Exception {
        RealmConnection conn = client().connect();
        RealmRequest r = conn.chat(ScenariosTest.longReq(2000));
        assertTrue(r.next(Duration.ofSeconds(30)).isCreated());
        conn.close();
        ExecutionException ee = assertThrows(ExecutionException.class, () -> r.result().get(10, TimeUnit.SECONDS));
        assertEquals(1000, ((ConnectionClosedException) ee.getCause()).closeCode());
        assertEquals(0, TestServer.shared().waitRunning(n -> n == 0));
    }

    /** A fake server that answers every connection with the given bytes and then holds it open or closes it. */
    static ServerSocket fake(String answer, boolean hold) throws IOException {
        ServerSocket ss = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread t = new Thread(() -> {
            while (!ss.isClosed()) {
                try {
                    Socket s = ss.accept();
                    byte[] buf = new byte[65536];
                    s.getInputStream().read(buf);
                    OutputStream o = s.getOutputStream();
                    o.write(answer.getBytes(StandardCharsets.UTF_8));
                    o.flush();
                    if (!hold) s.close();
                } catch (IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
        return ss;
    }

    @Test
    void garbageAnswersAreTypedErrors() throws Exception {
        String body = "not json";
        try (ServerSocket ss = fake("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body, false)) {
            RealmClient c = RealmClient.builder().baseUrl("http://127.0.0.1:" + ss.getLocalPort()).maxRetries(0)
                    .timeout(Duration.ofSeconds(5)).connectTimeout(Duration.ofSeconds(2)).build();
            assertEquals("protocol_error", assertThrows(ConnectionException.class, () -> c.chat(new ChatRequest().user("hi"))).code());
            // not a WebSocket upgrade: an error, not a hang
            assertThrows(RealmException.class, c::connect);
        }
        String sse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {garbage\n\n";
        try (ServerSocket ss = fake(sse, false)) {
            RealmClient c = RealmClient.builder().baseUrl("http://127.0.0.1:" + ss.getLocalPort()).maxRetries(0).build();
            try (RealmStream<ChatChunk> s = c.chatStream(new ChatRequest().user("hi"))) {
                assertThrows(ConnectionException.class, s::hasNext);
            }
        }
        // a server that accepts and never answers: the timeouts end it
        try (ServerSocket ss = fake("", true)) {
            RealmClient c = RealmClient.builder().baseUrl("http://127.0.0.1:" + ss.getLocalPort()).maxRetries(0)
                    .timeout(Duration.ofSeconds(2)).connectTimeout(Duration.ofSeconds(2)).build();
            assertEquals("timeout", assertThrows(ConnectionException.class, () -> c.chat(new ChatRequest().user("hi"))).code());
            assertThrows(ConnectionException.class, c::connect);
        }
    }
}
