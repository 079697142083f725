// Package test holds oak's end-to-end tests: the project's own binaries run as
// real processes (bin/marathon-sim standing in for Marathon, bin/coredns with
// the marathon plugin, bin/nginxctl with a real Nginx) and are queried with
// real clients (dig, HTTP).
//
// Marathon itself cannot run here (no Mesos, no ZooKeeper); the simulator is
// checked against recorded Marathon payloads in package marathonsim, and
// these tests talk to it only through go-marathon, as oak does.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/poll"
	"github.com/oakdns/oak/internal/ports"
	"github.com/oakdns/oak/internal/proc"
	"github.com/oakdns/oak/internal/seed"
)

// binDir holds the binaries built once for the whole package by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oak-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/coredns", "../cmd/marathon-sim", "../cmd/oak-demo", "../cmd/nginxctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a child process whose output is kept for the test log.
type process struct {
	*proc.Proc
	out proc.Output
}

func (p *process) output() string { return p.out.String() }

// start runs bin/<name> with args and env until the test ends. On failure the
// process's output is written to the test log.
func start(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	var err error
	if p.Proc, err = proc.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.output())
		}
	})
	return p
}

// freePort returns a port free for a server (see ports.Free).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// startSim starts bin/marathon-sim and returns its URL and a go-marathon
// client for it.
func startSim(t *testing.T, args ...string) (string, marathon.Marathon) {
	t.Helper()
	_, url, client := startSimProcess(t, args...)
	return url, client
}

// startSimProcess is startSim that also returns the simulator's process.
func startSimProcess(t *testing.T, args ...string) (*process, string, marathon.Marathon) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sim := start(t, nil, "marathon-sim", append([]string{"-listen", addr}, args...)...)
	url := "http://" + addr
	cfg := marathon.NewDefaultConfig()
	cfg.URL = url
	cfg.HTTPClient = newHTTPClient()
	// Wait before go-marathon sees the simulator: go-marathon marks a member
	// that refuses a connection down for its 5 s ping cycle.
	waitFor(t, "marathon-sim to answer", func() error {
		resp, err := cfg.HTTPClient.Get(url + "/ping")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	client, err := marathon.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, url, client
}

// newHTTPClient is the client the tests give go-marathon: timeouts on the
// transport only, since http.Client.Timeout would cut event streams.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
}

// deploySeed creates the seed topology on Marathon and waits until every task
// runs.
func deploySeed(t *testing.T, client marathon.Marathon) {
	t.Helper()
	if err := seed.Deploy(client, "OAK_", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// startCoreDNS writes corefile to a temp dir, starts bin/coredns on a free
// port and returns it with the port once CoreDNS has bound it. The port
// can still be taken between freePort's check and CoreDNS's bind; CoreDNS
// then exits, and it is started again on another port.
func startCoreDNS(t *testing.T, corefile string, env ...string) (*process, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Corefile")
	for attempt := 1; ; attempt++ {
		if err := os.WriteFile(path, []byte(withFreeSidePorts(t, corefile)), 0o644); err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		p := start(t, env, "coredns", "-conf", path, "-dns.port", fmt.Sprint(port))
		err := p.waitOutput("CoreDNS-", 30*time.Second) // the banner, printed once every server listens
		if err == nil {
			return p, port
		}
		if attempt == 3 || !strings.Contains(p.output(), "address already in use") {
			t.Fatalf("coredns did not start: %v\n%s", err, p.output())
		}
		t.Logf("port %d was taken before CoreDNS bound it; trying another", port)
	}
}

// withFreeSidePorts moves the `health` (:8080), `ready` (:8181) and
// `prometheus` (:9153) lines of an operator's Corefile, which take the plugins' fixed default
// ports on every address, to free loopback ports, so that tests running
// side by side (and the backends of nginxctl's tests) do not collide.
func withFreeSidePorts(t *testing.T, corefile string) string {
	t.Helper()
	bare := regexp.MustCompile(`(?m)^(\s*)(health|prometheus|ready)[ \t]*$`)
	return bare.ReplaceAllStringFunc(corefile, func(line string) string {
		return fmt.Sprintf("%s 127.0.0.1:%d", strings.TrimRight(line, " \t"), freePort(t))
	})
}

// waitOutput waits until the process has written s, and fails when it
// exits or d passes first.
func (p *process) waitOutput(s string, d time.Duration) error {
	deadline := time.After(d)
	for !strings.Contains(p.output(), s) {
		select {
		case <-p.Done():
			if strings.Contains(p.output(), s) {
				return nil
			}
			return fmt.Errorf("exited before writing %q", s)
		case <-deadline:
			return fmt.Errorf("did not write %q within %s", s, d)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// exchange sends one query with miekg/dns (used only to wait for readiness;
// assertions go through dig).
func exchange(server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, server)
	return r, err
}

// waitSynced waits until the server answers name with something other than
// SERVFAIL, i.e. the plugin has finished its first sync.
func waitSynced(t *testing.T, server, name string) {
	t.Helper()
	waitFor(t, "first sync of "+server, func() error {
		r, err := exchange(server, name, dns.TypeA)
		if err != nil {
			return err
		}
		if r.Rcode == dns.RcodeServerFailure {
			return fmt.Errorf("SERVFAIL")
		}
		return nil
	})
}

// dig runs the real dig client and returns its +short answer lines, sorted
// as dig printed them. from is the source address (dig -b); extra are more
// dig options such as +tcp. A dig that fails (no reply) fails the test.
func dig(t *testing.T, digPath, server string, port int, from, name, qtype string, extra ...string) []string {
	t.Helper()
	lines, err := tryDig(digPath, server, port, from, name, qtype, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// tryDig is dig for polling loops: a server that is not listening yet is an
// error to retry, not a failure.
func tryDig(digPath, server string, port int, from, name, qtype string, extra ...string) ([]string, error) {
	args := []string{"@" + server, "-p", fmt.Sprint(port), "+short", "+tries=1", "+time=2"}
	if from != "" {
		args = append(args, "-b", from)
	}
	args = append(args, extra...)
	args = append(args, name, qtype)
	out, err := exec.Command(digPath, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// expectDig polls dig (with extra options such as +tcp) until its sorted
// +short answer equals want.
func expectDig(t *testing.T, digPath, server string, port int, from, name, qtype string, extra []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, fmt.Sprintf("%s %s from %q at %s = %v", name, qtype, from, server, want), func() error {
		got, err := tryDig(digPath, server, port, from, name, qtype, extra...)
		if err != nil {
			return err
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// digStatus runs dig without +short and returns the reply's status
// (NOERROR, NXDOMAIN, SERVFAIL...).
func digStatus(t *testing.T, digPath, server string, port int, from, name, qtype string) string {
	t.Helper()
	args := []string{"@" + server, "-p", fmt.Sprint(port), "+tries=1", "+time=2", "-b", from, name, qtype}
	out, err := exec.Command(digPath, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "status: "); i >= 0 {
			rest := l[i+len("status: "):]
			return strings.TrimRight(strings.SplitN(rest, ",", 2)[0], " ")
		}
	}
	t.Fatalf("no status in dig output:\n%s", out)
	return ""
}

// simAdmin calls the simulator's fault-injection API (POST /_sim/<op>).
func simAdmin(t *testing.T, simURL, op string, body map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(simURL+"/_sim/"+op, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("sim admin %s: %v", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("sim admin %s: %s %s", op, resp.Status, msg)
	}
}

// waitFor polls cond until it returns nil, failing the test after a generous
// deadline. The deadline is a guard against hanging, not a measurement.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), what, 60*time.Second, 50*time.Millisecond, cond); err != nil {
		t.Fatal(err)
	}
}
