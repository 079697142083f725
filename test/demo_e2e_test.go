package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the README's first command as `make demo` runs it (without
// holding for Ctrl-C) and checks that the show ends with the fallback.
func TestDemo(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "oak-demo"), "-bin", binDir, "-hold=false",
		"-corefile", "../corefile-examples/demo.Corefile",
		"-marathon", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-dns-port", fmt.Sprint(freePort(t)),
		"-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-nginxctl", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("oak-demo: %v\n%s", err, out)
	}
	show := string(out)
	wants := []string{
		"sees env=feature-login how=app chain=feature-login,integration",
		"Deleting /feature-login/redis1",
	}
	if _, err := exec.LookPath("nginx"); err == nil {
		// Each container reaches its own env's app1 through Nginx.
		wants = append(wants, "http://app1.example.com/ -> 200 integration/app1", "http://app1.example.com/ -> 200 feature-login/app1",
			"http://nosuch.example.com/ -> 404")
	} else {
		wants = append(wants, "nginx is not installed: skipping the Nginx half")
	}
	for _, want := range wants {
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

// TestDemoTwice runs a second demo on the ports of one that is running:
// the second refuses at once, naming the port, and leaves the first alone;
// the first removes its run folder of logs when it stops.
func TestDemoTwice(t *testing.T) {
	simAddr, dnsPort := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprint(freePort(t))
	demoArgs := func(simAddr, dnsPort string) []string {
		return []string{"-bin", binDir, "-corefile", "../corefile-examples/demo.Corefile", "-marathon", simAddr, "-dns-port", dnsPort,
			"-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-nginxctl", fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	}
	args := demoArgs(simAddr, dnsPort)
	first := start(t, nil, "oak-demo", args...)
	if err := first.waitOutput("Running until Ctrl-C", 60*time.Second); err != nil {
		t.Fatalf("first demo: %v", err)
	}
	out, err := exec.Command(filepath.Join(binDir, "oak-demo"), args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "port "+simAddr+" is already in use") {
		t.Fatalf("second demo: %v, want a refusal naming %s:\n%s", err, simAddr, out)
	}
	if strings.Contains(string(out), "deploying") {
		t.Errorf("second demo went on after the refusal:\n%s", out)
	}
	// With the simulator's port free, CoreDNS's is the one refused.
	other := demoArgs(fmt.Sprintf("127.0.0.1:%d", freePort(t)), dnsPort)
	out, err = exec.Command(filepath.Join(binDir, "oak-demo"), other...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "port :"+dnsPort+" is already in use") {
		t.Fatalf("second demo on the first's DNS port: %v, want a refusal naming %s:\n%s", err, dnsPort, out)
	}

	_, logs, ok := strings.Cut(first.output(), "== Logs of this run in ")
	logs, _, _ = strings.Cut(logs, "\n")
	if !ok {
		t.Fatalf("the first demo did not name its run folder:\n%s", first.output())
	}
	if _, err := os.Stat(filepath.Join(logs, "coredns.log")); err != nil {
		t.Fatalf("run folder: %v", err)
	}
	if err := first.Cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-first.Done()
	if _, err := os.Stat(logs); !os.IsNotExist(err) {
		t.Errorf("run folder %s left behind after Ctrl-C: %v", logs, err)
	}
}
