package realm_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeExample runs README.md's example as written, as a program of its own (go run),
// against the tests' server.
func TestReadmeExample(t *testing.T) {
	s := srv(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(readme), "```go\n", 2)
	if len(parts) != 2 {
		t.Fatal("no ```go block in README.md")
	}
	code := strings.SplitN(parts[1], "```", 2)[0]
	if n := strings.Count(strings.TrimSpace(code[strings.Index(code, "func main"):]), "\n"); n > 25 {
		t.Errorf("the example's main has %d lines", n)
	}
	here, _ := filepath.Abs(".")
	dir := t.TempDir()
	gomod := fmt.Sprintf(`module example

go 1.19

require (
	github.com/realm-ai/realm/clients/go v0.0.0
	github.com/gorilla/websocket v1.5.0
)

replace github.com/realm-ai/realm/clients/go => %s

replace github.com/gorilla/websocket => /usr/share/gocode/src/github.com/gorilla/websocket
`, here)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REALM_URL="+s.URL, "REALM_API_KEY="+testKey, "GOPROXY=off", "GOFLAGS=-mod=mod", "GOSUMDB=off")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) == "" {
		t.Fatal("the example printed nothing")
	}
	t.Logf("README example (%v): %s", time.Since(t0).Round(time.Millisecond), out)
}
