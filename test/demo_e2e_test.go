package test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as `make demo` runs it (without
// holding for Ctrl-C) and checks that the show ends with the fallback.
func TestDemo(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "oak-demo"), "-bin", binDir, "-hold=false",
		"-corefile", "../corefile-examples/demo.Corefile",
		"-marathon", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-dns-port", fmt.Sprint(freePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oak-demo: %v\n%s", err, out)
	}
	show := string(out)
	for _, want := range []string{
		"sees env=feature-login how=app chain=feature-login,integration",
		"Deleting /feature-login/redis1",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("demo output lacks %q:\n%s", want, show)
		}
	}
	// After the delete, the last redis1 line of the feature container is
	// integration's redis1.
	i := strings.LastIndex(show, "container "+"127.0.2.10")
	if i < 0 || !strings.Contains(show[i:], "redis1.db.example.com    -> 10.199.45.21") {
		t.Errorf("demo does not show the fallback to integration's redis1:\n%s", show)
	}
}
