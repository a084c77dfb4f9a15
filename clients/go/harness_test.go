package realm_test

// The test harness. With REALM_TEST_URL set (scripts/test-clients.sh) the tests use that running
// realm-server with the keys REALM_TEST_KEY, REALM_TEST_LIMITED_KEY and REALM_TEST_METRICS_KEY,
// and leave it running. Without it, the harness starts the real realm-server (REALM_SERVER_BIN,
// default ../../target/debug/realm-server) on the real model (REALM_MODEL, default SmolLM2 in
// ${REALM_CACHE_DIR:-~/.cache/realm}/models) on a free loopback port, with a tenants file of
// SHA-256 keys (a "main" tenant, a "limited" one with requests_per_minute = 2 and
// max_tokens = 64), polls /health, and stops it by its PID. S6 always starts its own.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	testKey    = envOr("REALM_TEST_KEY", "client-test-key-0123456789")
	limitedKey = envOr("REALM_TEST_LIMITED_KEY", "client-limited-key-abcdef")
	metricsKey = envOr("REALM_TEST_METRICS_KEY", "client-metrics-key")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// server: one this harness started (cmd set), or a shared one at URL (cmd nil), which the
// tests never stop or kill.
type server struct {
	URL  string
	cmd  *exec.Cmd
	log  string
	exit chan error
}

var (
	mainSrv     *server
	mainSrvErr  error
	tenantsTOML string
)

func cacheDir() string {
	if d := os.Getenv("REALM_CACHE_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "realm")
}

func serverBin() string {
	if b := os.Getenv("REALM_SERVER_BIN"); b != "" {
		return b
	}
	return filepath.Join("..", "..", "target", "debug", "realm-server")
}

func modelPath() string {
	if m := os.Getenv("REALM_MODEL"); m != "" {
		return m
	}
	return filepath.Join(cacheDir(), "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startServer(name string) (*server, error) {
	bin := serverBin()
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("realm-server binary %s: %v (build it, or set REALM_SERVER_BIN)", bin, err)
	}
	if _, err := os.Stat(modelPath()); err != nil {
		return nil, fmt.Errorf("model %s: %v (scripts/fetch-models.sh, or set REALM_MODEL)", modelPath(), err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d.log", name, port))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-m", modelPath(), "--host", "127.0.0.1", "--port", strconv.Itoa(port), "-t", "2",
		"--config", tenantsTOML, "--metrics-key", metricsKey, "--max-running", "8", "-c", "4096")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: logPath, exit: make(chan error, 1)}
	go func() { s.exit <- cmd.Wait(); logf.Close() }()
	if err := s.waitReady(120 * time.Second); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// sharedServer: the running server at url, once its /health answers 200.
func sharedServer(url string) (*server, error) {
	s := &server{URL: strings.TrimRight(url, "/")}
	return s, s.waitReady(10 * time.Second)
}

// waitReady polls /health until 200 (or the process this harness started exits).
func (s *server) waitReady(d time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s.cmd != nil {
			select {
			case err := <-s.exit:
				s.exit <- err
				return fmt.Errorf("realm-server exited (%v): %s", err, s.logs())
			default:
			}
		}
		resp, err := hc.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("realm-server at %s did not become ready: %s", s.URL, s.logs())
}

func (s *server) logs() string {
	if s.cmd == nil {
		return "(a shared server: its log is with whoever started it)"
	}
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop: SIGTERM to its PID, then SIGKILL after 30 s; returns the exit error. A shared server is
// left running.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exit:
		s.exit <- err
		return err
	case <-time.After(30 * time.Second):
		s.kill()
		return fmt.Errorf("realm-server did not stop on SIGTERM")
	}
}

// kill: SIGKILL to its PID; never to a shared server.
func (s *server) kill() {
	if s.cmd == nil {
		panic("kill: not a server this harness started")
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	err := <-s.exit
	s.exit <- err
}

// metric reads one unlabelled sample of GET /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			return v
		}
	}
	return 0
}

func (s *server) running(t *testing.T) float64 { return s.metric(t, "realm_num_requests_running") }

// waitRunning polls the running gauge until pred holds or 10 s pass; returns the last value.
func (s *server) waitRunning(t *testing.T, pred func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.running(t)
		if pred(n) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func srv(t *testing.T) *server {
	t.Helper()
	if mainSrvErr != nil {
		t.Fatalf("no realm-server: %v", mainSrvErr)
	}
	return mainSrv
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "realm-go-client")
	if err != nil {
		panic(err)
	}
	tenantsTOML = filepath.Join(dir, "tenants.toml")
	toml := fmt.Sprintf(`
[[tenant]]
name = "main"
key_sha256 = [%q]

[[tenant]]
name = "limited"
key_sha256 = [%q]
requests_per_minute = 2
max_tokens = 64
`, sha(testKey), sha(limitedKey))
	if err := os.WriteFile(tenantsTOML, []byte(toml), 0o600); err != nil {
		panic(err)
	}
	if url := os.Getenv("REALM_TEST_URL"); url != "" {
		mainSrv, mainSrvErr = sharedServer(url)
	} else {
		mainSrv, mainSrvErr = startServer("realm-go-client-test")
	}
	if mainSrvErr == nil {
		// the README's and the examples' environment
		os.Setenv("REALM_URL", mainSrv.URL)
		os.Setenv("REALM_API_KEY", testKey)
	}
	code := m.Run()
	if mainSrv != nil && mainSrvErr == nil {
		if err := mainSrv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "realm-server exited with %v: %s\n", err, mainSrv.logs())
			if code == 0 {
				code = 1
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
