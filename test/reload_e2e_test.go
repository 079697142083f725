package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/poll"
)

// reloadApps is the cluster size of TestReloadKeepsAnswering: large enough
// that a first full sync takes a while, as it does on a real cluster.
const reloadApps = 2000

// writeReloadApps writes a GET /v2/apps?embed=apps.tasks body of n apps
// with one running task each, for marathon-sim -apps.
func writeReloadApps(t *testing.T, n int) string {
	t.Helper()
	type task struct {
		ID          string           `json:"id"`
		AppID       string           `json:"appId"`
		State       string           `json:"state"`
		IPAddresses []map[string]any `json:"ipAddresses"`
	}
	type app struct {
		ID     string            `json:"id"`
		Labels map[string]string `json:"labels"`
		Tasks  []task            `json:"tasks"`
	}
	apps := make([]app, n)
	for i := range apps {
		id := fmt.Sprintf("/app%d", i)
		ip := fmt.Sprintf("10.%d.%d.%d", 100+i>>16, i>>8&255, i&255)
		apps[i] = app{ID: id, Labels: map[string]string{"OAK_NAMES": fmt.Sprintf("app%d.example.com", i)}, Tasks: []task{
			{ID: fmt.Sprintf("app%d.t0", i), AppID: id, State: "TASK_RUNNING", IPAddresses: []map[string]any{{"ipAddress": ip, "protocol": "IPv4"}}},
		}}
	}
	body, err := json.Marshal(map[string][]app{"apps": apps})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "apps.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// goroutines reads the goroutine count from the pprof plugin at addr.
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(body), "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(first, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("pprof goroutine header %q: %v", first, err)
	}
	return n
}

// TestReloadKeepsAnswering reloads bin/coredns 20 times with SIGUSR1 (the
// Corefile unchanged) while a client asks for a name in a loop: the
// source's view carries over into each new instance, so no query gets
// SERVFAIL, and the goroutine count does not grow with the reloads.
func TestReloadKeepsAnswering(t *testing.T) {
	const reloads = 20
	url, _ := startSim(t, "-apps", writeReloadApps(t, reloadApps))
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p, port := startCoreDNS(t, fmt.Sprintf(`. {
    marathon example.com {
        endpoint %s
    }
    pprof %s
}`, url, pprofAddr))
	server := fmt.Sprintf("127.0.0.1:%d", port)
	waitSynced(t, server, "app1.example.com")

	var answered, servfail, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &dns.Client{Timeout: 2 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("app%d.example.com.", i%reloadApps), dns.TypeA)
			r, _, err := c.Exchange(m, server)
			switch {
			case err != nil:
				failed.Add(1)
			case r.Rcode == dns.RcodeServerFailure:
				servfail.Add(1)
			default:
				answered.Add(1)
			}
		}
	})
	// Some answers between reloads, so that every new instance is asked.
	waitAnswers := func() {
		from := answered.Load()
		waitFor(t, "answers", func() error {
			if answered.Load() < from+50 {
				return fmt.Errorf("%d answers", answered.Load()-from)
			}
			return nil
		})
	}
	waitAnswers()
	before := goroutines(t, pprofAddr)
	for i := 1; i <= reloads; i++ {
		if err := p.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("reload %d", i), func() error {
			if n := strings.Count(p.output(), "Reloading complete"); n < i {
				return fmt.Errorf("%d reloads complete", n)
			}
			return nil
		})
		waitAnswers()
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reloads: %d answers, %d SERVFAIL, %d without reply", reloads, answered.Load(), servfail.Load(), failed.Load())
	if n := servfail.Load(); n > 0 {
		t.Errorf("%d SERVFAIL across %d reloads, want none", n, reloads)
	}

	// The old instances' goroutines end once their servers and sources
	// stop; wait for that, then compare.
	after := goroutines(t, pprofAddr)
	err := poll.Until(context.Background(), "goroutines to settle", 30*time.Second, 100*time.Millisecond, func() error {
		if after = goroutines(t, pprofAddr); after > before {
			return fmt.Errorf("%d goroutines after %d reloads, %d before", after, reloads, before)
		}
		return nil
	})
	t.Logf("goroutines: %d before, %d after %d reloads", before, after, reloads)
	if err != nil {
		t.Error(err)
	}
}
