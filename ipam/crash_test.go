package ipam

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oakdns/oak/internal/poll"
	"github.com/oakdns/oak/internal/ports"
	"github.com/oakdns/oak/internal/proc"
)

// crashServer is a child process serving the API over a pool with fsync.
type crashServer struct {
	url  string
	proc *proc.Proc
	out  *proc.Output
}

// startCrashServer re-executes this test binary as the API server (see
// TestMain) on store, and waits until it answers.
func startCrashServer(t *testing.T, store string) *crashServer {
	t.Helper()
	port, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envServeStore+"="+store, envServeAddr+"="+addr,
		envServeSubnet+"=10.88.0.0/18", envServeToken+"="+testToken)
	out := &proc.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := proc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	s := &crashServer{url: "http://" + addr, proc: p, out: out}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	err = poll.Until(context.Background(), "the pool's API server", 30*time.Second, 20*time.Millisecond, func() error {
		if exited, werr := p.Exited(); exited {
			return fmt.Errorf("exited (%v): %s", werr, out.String())
		}
		resp, err := http.Get(s.url + "/v1/pools")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ledger is what the clients were told: every acknowledged allocation
// and release, and the requests whose outcome is unknown.
type ledger struct {
	mu       sync.Mutex
	holder   map[string]string // address → the app it was acknowledged to (never reused: the cooldown outlasts the test)
	held     map[string]string // app → acknowledged address, while no release of it was sent
	released map[string]bool   // apps whose release was acknowledged
	unsure   map[string]bool   // apps with a request that got no answer
}

// TestCrashKeepsAcknowledgedAllocations kills the server (SIGKILL) at a
// random moment of an allocation storm, restarts it, and checks that every
// acknowledged allocation is still there on its address, every
// acknowledged release stayed released, and no address went to two apps;
// several rounds on the same store.
func TestCrashKeepsAcknowledgedAllocations(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	store := filepath.Join(t.TempDir(), "pool.db")
	led := &ledger{holder: map[string]string{}, held: map[string]string{}, released: map[string]bool{}, unsure: map[string]bool{}}
	for round := range rounds {
		srv := startCrashServer(t, store)
		led.check(t, srv.url)
		storm(t, srv, led, round)
	}
	led.check(t, startCrashServer(t, store).url)
	t.Logf("%d apps acknowledged, %d released, %d unsure", len(led.holder), len(led.released), len(led.unsure))
}

// storm runs 32 clients allocating (and now and then releasing) until the
// server is killed at a random moment.
func storm(t *testing.T, srv *crashServer, led *ledger, round int) {
	client := &http.Client{Timeout: 10 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				app := fmt.Sprintf("/crash/r%d/c%d/a%d", round, c, i)
				var addr string
				if !send(client, "POST", srv.url+"/v1/allocations", `{"app":"`+app+`"}`, &addr) {
					led.unsureOf(app)
					return
				}
				led.allocated(t, app, addr)
				if i%5 == 4 {
					victim := fmt.Sprintf("/crash/r%d/c%d/a%d", round, c, i-2)
					led.releasing(victim)
					if !send(client, "DELETE", srv.url+"/v1/allocations"+victim, "", nil) {
						led.unsureOf(victim)
						return
					}
					led.releasedOf(victim)
				}
			}
		})
	}
	// Kill after a random number of acknowledged allocations.
	target := led.count() + 50 + rand.IntN(600)
	err := poll.Until(ctx, "the storm", time.Minute, time.Millisecond, func() error {
		if n := led.count(); n < target {
			return fmt.Errorf("%d of %d allocations acknowledged", n, target)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err = srv.proc.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.proc.Done()
	stop()
	wg.Wait()
}

// send makes one request; it reports whether the server acknowledged it
// (2xx), storing the answer's address in addr.
func send(client *http.Client, method, url, body string, addr *string) bool {
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Address string `json:"address"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || resp.StatusCode/100 != 2 {
		return false
	}
	if addr != nil {
		*addr = out.Address
	}
	return true
}

func (l *ledger) allocated(t *testing.T, app, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.holder[addr]; ok && prev != app {
		t.Errorf("%s acknowledged to %s and to %s", addr, prev, app)
	}
	l.holder[addr] = app
	l.held[app] = addr
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.holder)
}

func (l *ledger) releasing(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, app)
}

func (l *ledger) releasedOf(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released[app] = true
}

func (l *ledger) unsureOf(app string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsure[app] = true
}

// check compares the restarted server's allocations with the ledger.
func (l *ledger) check(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url + "/v1/allocations?state=all")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var records []allocationJSON
	if err := json.NewDecoder(resp.Body).Decode(&records); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	allocated := map[string]string{}
	seen := map[string]bool{}
	for _, r := range records {
		addr := r.Address.String()
		if seen[addr] {
			t.Fatalf("%s listed twice", addr)
		}
		seen[addr] = true
		if r.State != Allocated {
			continue
		}
		if prev, ok := allocated[r.App]; ok {
			t.Fatalf("%s holds %s and %s", r.App, prev, addr)
		}
		allocated[r.App] = addr
		if holder, ok := l.holder[addr]; ok && holder != r.App {
			t.Errorf("%s was acknowledged to %s but is now %s's", addr, holder, r.App)
		}
		if l.released[r.App] {
			t.Errorf("%s's release was acknowledged but it holds %s", r.App, addr)
		}
		if _, ok := l.holder[addr]; !ok && !l.unsure[r.App] {
			t.Errorf("%s holds %s, which no request asked for", r.App, addr)
		}
	}
	for app, addr := range l.held {
		if got := allocated[app]; got != addr {
			t.Errorf("acknowledged %s → %s, after the crash %q", app, addr, got)
		}
	}
}
