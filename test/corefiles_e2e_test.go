package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/seed"
	"github.com/oakdns/oak/internal/testutil"
)

// Every Corefile in corefile-examples/ is loaded by bin/coredns and queried
// with dig here (by-client.Corefile in TestSeedFallback, demo.Corefile in
// TestDemo), so none can rot.

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "corefile-examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onLoopback returns an operator's Corefile as it must run with the seed on
// one machine: the seed plays containers by loopback addresses, which oak
// refuses as fixed IPs unless `ip_allow loopback` allows them.
func onLoopback(t *testing.T, corefile string) string {
	t.Helper()
	out := regexp.MustCompile(`(?m)^(\s*marathon\b[^{\n]*\{\n)`).ReplaceAllString(corefile, "${1}        ip_allow loopback\n")
	if out == corefile {
		t.Fatal("no marathon block to allow loopback addresses in")
	}
	return out
}

// TestPerEnvCorefile: one server block per env, pinned, each on its own
// address; the client's address plays no part.
func TestPerEnvCorefile(t *testing.T) {
	digPath := testutil.RequireTool(t, "dig")
	url, client := startSim(t)
	deploySeed(t, client)
	const integrationDNS, featureDNS = "127.0.0.53", "127.0.0.54"
	_, port := startCoreDNS(t, onLoopback(t, readExample(t, "per-env.Corefile")), "MARATHON_URL="+url,
		"OAK_BIND_INTEGRATION="+integrationDNS, "OAK_BIND_FEATURE_LOGIN="+featureDNS)
	waitSynced(t, fmt.Sprintf("%s:%d", featureDNS, port), "db1.db.example.com")

	expectDig(t, digPath, integrationDNS, port, "", "redis1.db.example.com", "A", nil, "10.199.45.21")
	expectDig(t, digPath, featureDNS, port, "", "redis1.db.example.com", "A", nil, "10.199.45.31")
	expectDig(t, digPath, featureDNS, port, "", "db1.db.example.com", "A", nil, "10.199.45.22")
	// Pinned: the source address does not change the view.
	expectDig(t, digPath, integrationDNS, port, seed.FeatureClient, "redis1.db.example.com", "A", nil, "10.199.45.21")
	expectDig(t, digPath, featureDNS, port, "", "_env.example.com", "TXT", nil,
		`"env=feature-login" "how=pinned" "chain=feature-login,integration" "client=127.0.0.1"`)
	// The blocks' policies differ only in a fallback rule that restates the
	// default: one watcher, one event stream.
	if n := simStreams(t, url); n != 1 {
		t.Errorf("%d event streams to Marathon, want 1", n)
	}
}

// simStreams returns the number of event streams the simulator serves.
func simStreams(t *testing.T, simURL string) int {
	t.Helper()
	resp, err := http.Get(simURL + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state struct{ Streams int }
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	return state.Streams
}

// TestForwardCorefile: names no env serves go to the production resolver;
// names an env registers never do, not even while they cannot be served, and
// nothing in example.com is forwarded before oak's first sync.
func TestForwardCorefile(t *testing.T) {
	digPath := testutil.RequireTool(t, "dig")
	upstream := startUpstream(t, map[string]string{
		"redis1.db.example.com.": "192.0.2.21", // production's redis1
		"www.example.com.":       "192.0.2.80", // production only
		"www.example.org.":       "192.0.2.90",
	})

	// Before the first sync (Marathon unreachable): SERVFAIL in example.com,
	// never production's answer; other zones are forwarded.
	_, port := startCoreDNS(t, onLoopback(t, readExample(t, "by-client-forward.Corefile")),
		"MARATHON_URL=http://"+closedAddr(t), "OAK_UPSTREAM="+upstream)
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "www.example.org", "A", nil, "192.0.2.90")
	for _, name := range []string{"redis1.db.example.com", "www.example.com"} {
		if got := digStatus(t, digPath, "127.0.0.1", port, seed.FeatureClient, name, "A"); got != "SERVFAIL" {
			t.Errorf("%s before the first sync: %s, want SERVFAIL", name, got)
		}
	}

	url, client := startSim(t)
	deploySeed(t, client)
	_, port = startCoreDNS(t, onLoopback(t, readExample(t, "by-client-forward.Corefile")),
		"MARATHON_URL="+url, "OAK_UPSTREAM="+upstream)
	waitSynced(t, fmt.Sprintf("127.0.0.1:%d", port), "db1.db.example.com")
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A", nil, "10.199.45.31")
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "www.example.com", "A", nil, "192.0.2.80")
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "www.example.org", "A", nil, "192.0.2.90")

	// Scale every redis1 to zero: the name stays registered, so it is
	// answered NXDOMAIN by oak and never forwarded to production.
	for _, id := range []string{"/feature-login/redis1", "/integration/redis1"} {
		if _, err := client.ScaleApplicationInstances(id, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "redis1 without tasks to be NXDOMAIN", func() error {
		if got := digStatus(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A"); got != "NXDOMAIN" {
			return fmt.Errorf("status %s", got)
		}
		return nil
	})
	if got := dig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A"); len(got) != 0 {
		t.Errorf("redis1 without tasks answered %v (production leaked?)", got)
	}
}

// TestOfflineCorefile: the plugin serves a Marathon apps dump from a file,
// reloads it when it changes, and keeps the last good view when the new file
// does not parse.
func TestOfflineCorefile(t *testing.T) {
	digPath := testutil.RequireTool(t, "dig")
	url, client := startSim(t)
	deploySeed(t, client)
	full := appsDump(t, url)
	if _, err := client.DeleteApplication("/feature-login/redis1", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delete of /feature-login/redis1", func() error {
		if strings.Contains(string(appsDump(t, url)), "/feature-login/redis1") {
			return fmt.Errorf("still there")
		}
		return nil
	})
	withoutRedis := appsDump(t, url)

	file := filepath.Join(t.TempDir(), "apps.json")
	writeFile(t, file, full)
	dnsd, port := startCoreDNS(t, onLoopback(t, readExample(t, "offline.Corefile")), "OAK_APPS_FILE="+file)
	waitSynced(t, fmt.Sprintf("127.0.0.1:%d", port), "db1.db.example.com")
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A", nil, "10.199.45.31")

	writeFile(t, file, withoutRedis)
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A", nil, "10.199.45.21")

	writeFile(t, file, []byte(`{"apps": [ this is not json`))
	// Wait until the plugin has read the broken file (its log says so), then
	// check that the view is the last good one.
	waitFor(t, "the broken file to be read", func() error {
		if !strings.Contains(dnsd.output(), "keeping the last good view") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	expectDig(t, digPath, "127.0.0.1", port, seed.FeatureClient, "redis1.db.example.com", "A", nil, "10.199.45.21")
	expectDig(t, digPath, "127.0.0.1", port, seed.IntegrationClient, "app1.example.com", "A", nil, seed.IntegrationClient)
}

// appsDump is GET /v2/apps?embed=apps.tasks from Marathon, as an operator
// would save it for the offline mode.
func appsDump(t *testing.T, simURL string) []byte {
	t.Helper()
	resp, err := http.Get(simURL + "/v2/apps?embed=apps.tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("apps dump: %s %v", resp.Status, err)
	}
	return b
}

// writeFile replaces path atomically, as a deploy tool would.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// startUpstream serves A records from answers on a UDP port of 127.0.0.1,
// playing the production resolver, and returns its address.
func startUpstream(t *testing.T, answers map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		if ip, ok := answers[strings.ToLower(q.Name)]; ok && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.ParseIP(ip),
			})
		} else if !ok {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}
