package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/internal/dockertest"
	"github.com/oakdns/oak/internal/testutil"
	"github.com/oakdns/oak/marathonsim"
)

// platform is the whole system on a private Docker network: the network
// made by `nginxctl network ensure`, bin/marathon-sim -docker running the
// apps as containers, bin/coredns and bin/nginxctl (with Nginx) on the
// bridge's gateway address.
type platform struct {
	t        *testing.T
	cli      *client.Client
	img      string // the oakbox test image
	subnet   netip.Prefix
	gateway  netip.Addr
	owner    string // the simulator's container label value
	simURL   string
	sim      *process
	marathon marathon.Marathon
	apiAddr  string // nginxctl's API
	token    string
	corefile string
	coredns  *process
	nginxctl *process
	dir      string // the test's files
	// containers caches each app's container id, so that probes need no
	// Marathon (which the test stops for a while).
	containers map[string]string
}

// appSpec is one app the test deploys: env ("" = integration), app id and
// the names it answers for; every app publishes app1.example.com only when
// http is set.
type appSpec struct {
	id, env, names string
	http           bool
	labels         map[string]string // more labels
	name           string            // what its server answers; default the app id
}

// TestPlatform is issue 12's end to end: apps deployed through nginxctl's
// POST /v1/apps run as containers on their pool addresses, and from inside
// those containers the system resolver (through Docker's --dns, to oak's
// CoreDNS) and HTTP through oak's Nginx give each env its own apps or its
// parent's; then change and failure, each checked from inside containers.
func TestPlatform(t *testing.T) {
	nginxPath := testutil.RequireTool(t, "nginx")
	p := newPlatform(t)
	p.runProcesses(nginxPath)

	apps := []appSpec{
		{id: "/integration/app1", names: "app1.example.com", http: true},
		{id: "/integration/redis1", names: "redis1.db.example.com"},
		{id: "/integration/db1", names: "db1.db.example.com"},
		{id: "/feature-login/app1", env: "feature-login", names: "app1.example.com", http: true},
		{id: "/feature-login/redis1", env: "feature-login", names: "redis1.db.example.com"},
		{id: "/feature-pay/app2", env: "feature-pay", names: "app2.example.com"},
	}
	addr := map[string]string{}
	for _, a := range apps {
		addr[a.id] = p.deploy(a)
	}
	for _, a := range apps {
		p.expectContainerAt(a.id, addr[a.id])
	}

	// Who asks decides what a name is.
	views := map[string]map[string]string{
		"/feature-login/app1": {
			"redis1.db.example.com": addr["/feature-login/redis1"], // its own
			"db1.db.example.com":    addr["/integration/db1"],      // the parent's
			"app1.example.com":      addr["/feature-login/app1"],
		},
		"/integration/app1": {
			"redis1.db.example.com": addr["/integration/redis1"],
			"db1.db.example.com":    addr["/integration/db1"],
			"app1.example.com":      addr["/integration/app1"],
		},
		"/feature-pay/app2": { // no redis1 or app1 of its own
			"redis1.db.example.com": addr["/integration/redis1"],
			"app1.example.com":      addr["/integration/app1"],
		},
	}
	backends := map[string]string{
		"/feature-login/app1": "/feature-login/app1",
		"/integration/app1":   "/integration/app1",
		"/feature-pay/app2":   "/integration/app1",
	}
	expectAll := func(stage string) {
		t.Helper()
		for from, names := range views {
			for name, want := range names {
				p.expectResolve(stage, from, name, want)
			}
		}
		for from, want := range backends {
			p.expectHTTP(stage, from, want)
		}
	}
	expectAll("deployed")

	// Change: the feature env's redis1 goes; its clients fall back.
	if _, err := p.marathon.DeleteApplication("/feature-login/redis1", false); err != nil {
		t.Fatal(err)
	}
	views["/feature-login/app1"]["redis1.db.example.com"] = addr["/integration/redis1"]
	p.expectResolve("after the delete", "/feature-login/app1", "redis1.db.example.com", addr["/integration/redis1"], addr["/feature-login/redis1"])

	// A new version of an app, deployed again: the same address, a new
	// container (the old one gone first), and its clients reach it.
	v2 := apps[3]
	v2.name = "/feature-login/app1 v2"
	if got := p.deploy(v2); got != addr[v2.id] {
		t.Fatalf("%s deployed again got %s, not its own %s", v2.id, got, addr[v2.id])
	}
	backends["/feature-login/app1"] = v2.name
	p.expectHTTP("after a new version", "/feature-login/app1", v2.name)
	p.expectContainerAt(v2.id, addr[v2.id])

	// CoreDNS dies and starts again: the same answers after its first sync,
	// and no wrong one before (SERVFAIL until then).
	if err := p.coredns.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.coredns.Done()
	p.startCoreDNS()
	expectAll("after a CoreDNS restart")

	// The event stream is cut while a change happens: nothing is lost.
	p.simAdmin("refuse-streams", map[string]any{"on": true})
	p.simAdmin("drop-streams", nil)
	mq := appSpec{id: "/feature-login/mq1", env: "feature-login", names: "mq1.mq.example.com"}
	addr[mq.id] = p.deploy(mq)
	p.simAdmin("refuse-streams", map[string]any{"on": false})
	views["/feature-login/app1"]["mq1.mq.example.com"] = addr[mq.id]
	views["/integration/app1"]["mq1.mq.example.com"] = ""
	expectAll("after the event stream was cut")

	// Marathon goes away: its streams end, then it stops (and answers
	// nothing). DNS and Nginx keep serving the last view.
	p.waitStreams(2) // CoreDNS's and nginxctl's, back from the cut above
	downs := strings.Count(p.nginxctl.output(), "event stream down")
	p.simAdmin("refuse-streams", map[string]any{"on": true})
	p.simAdmin("drop-streams", nil)
	waitFor(t, "nginxctl to lose Marathon's stream", func() error {
		if strings.Count(p.nginxctl.output(), "event stream down") == downs {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// Stopped only once the drop has reached the clients: a process stopped
	// before it closed the connections would leave them waiting, not down.
	p.freezeMarathon()
	expectAll("while Marathon is stopped")
	p.thawMarathon()
	p.simAdmin("refuse-streams", map[string]any{"on": false})

	// A hostile label. nginxctl's deploy refuses it, naming the label,
	// before the app holds an address or reaches Marathon.
	const hostile = "app1.example.com:8080;} server { listen 80; location / { return 200 pwned; }"
	evilSpec := appSpec{id: "/feature-pay/evil", env: "feature-pay", names: "redis1.db.example.com"}
	refused := evilSpec
	refused.labels = map[string]string{"OAK_HTTP": hostile}
	if status, raw := p.deployAnswer(refused); status != http.StatusBadRequest || !strings.Contains(string(raw), "OAK_HTTP") {
		t.Fatalf("deploy with a hostile label: %d %s, want 400 naming OAK_HTTP", status, raw)
	}
	if _, err := p.marathon.Application(evilSpec.id); err == nil {
		t.Fatalf("a refused deploy reached Marathon")
	}
	// The same label put on a deployed app in Marathon itself, as its UI
	// would: the app runs on its pool address, a candidate for its names,
	// but it is rejected, so feature-pay's redis1 stays integration's; the
	// rest is served.
	evil := p.deploy(evilSpec)
	p.expectContainerAt(evilSpec.id, evil)
	p.relabel(evilSpec.id, "OAK_HTTP", hostile)
	waitFor(t, "nginxctl to reject /feature-pay/evil", func() error {
		body := p.get("/v1/rejections")
		if !strings.Contains(body, "/feature-pay/evil") {
			return fmt.Errorf("rejections: %s", body)
		}
		return nil
	})
	p.expectContainerAt("/feature-pay/evil", evil) // running: only the label keeps it out
	expectAll("with a hostile app")
}

// newPlatform makes a fresh private network with `nginxctl network ensure`
// and starts bin/marathon-sim -docker; CoreDNS and nginxctl come next, as
// processes (runProcesses) or as Marathon apps (TestDeployedUnderMarathon).
func newPlatform(t *testing.T) *platform {
	cli := dockertest.Require(t)
	p := &platform{t: t, cli: cli, subnet: dockertest.UnusedSubnet(t, cli), owner: "oak-e2e-" + dockertest.Suffix(), token: "e2e-token",
		containers: map[string]string{}, dir: t.TempDir()}
	p.gateway = p.at(200)
	p.img = dockertest.GoImage(t, cli, "github.com/oakdns/oak/test/image/oakbox", "oak-e2e-oakbox")

	// The network, as the seed makes it; removed last, after every container.
	ensure := exec.Command(filepath.Join(binDir, "nginxctl"), append([]string{"network", "ensure"}, p.poolFlags()...)...)
	out, err := ensure.CombinedOutput()
	t.Cleanup(func() {
		if err := cli.NetworkRemove(context.Background(), p.networkName()); err != nil {
			t.Errorf("removing network %s: %v", p.networkName(), err)
		}
	})
	if err != nil {
		t.Fatalf("nginxctl network ensure: %v\n%s", err, out)
	}
	t.Cleanup(func() { // runs after the simulator stopped, which removes its containers
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", marathonsim.OwnerLabel+"="+p.owner))})
		if err != nil || len(list) > 0 {
			t.Errorf("containers left by the simulator: %d %v", len(list), err)
		}
	})
	p.sim, p.simURL, p.marathon = startSimProcess(t, "-docker", "-docker-owner", p.owner, "-health-check-interval", "500ms")
	return p
}

// runProcesses starts bin/coredns (the by-client Corefile with an ip_pool
// line, bound to the gateway) and bin/nginxctl with Nginx on the gateway
// and the pool.
func (p *platform) runProcesses(nginxPath string) {
	t := p.t
	t.Helper()
	tokenFile := filepath.Join(p.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(p.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.corefile = filepath.Join(p.dir, "Corefile")
	corefile := readExample(t, "by-client.Corefile")
	corefile = regexp.MustCompile(`(?m)^(\s*marathon\b[^{\n]*\{\n)`).ReplaceAllString(corefile, "${1}        ip_pool "+p.subnet.String()+"\n")
	corefile = regexp.MustCompile(`(?m)^(\S[^\n]*\{\n)`).ReplaceAllString(corefile, "${1}    bind "+p.gateway.String()+"\n")
	if err := os.WriteFile(p.corefile, []byte(withFreeSidePorts(t, corefile)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.startCoreDNS()

	p.apiAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"-marathon", p.simURL, "-nginx", nginxPath, "-nginx-dir", filepath.Join(p.dir, "nginx"), "-nginx-start",
		"-http", p.gateway.String() + ":80", "-control", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-listen", p.apiAddr,
		"-domains", "example.com", "-wait-min", "100ms", "-wait-max", "1s",
		"-pool-store", filepath.Join(p.dir, "ipam.db"), "-pool-fresh", "-api-token-file", tokenFile, "-ip_pool", p.subnet.String()},
		p.poolFlags()...)
	p.nginxctl = start(t, nil, "nginxctl", args...)
	p.waitAPI()
}

// waitAPI waits until nginxctl's API answers /healthz.
func (p *platform) waitAPI() {
	p.t.Helper()
	waitFor(p.t, "nginxctl's API", func() error {
		resp, err := http.Get("http://" + p.apiAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
}

// at is the address of the test subnet ending in last.
func (p *platform) at(last byte) netip.Addr {
	b := p.subnet.Addr().As4()
	b[3] = last
	return netip.AddrFrom4(b)
}

func (p *platform) networkName() string { return p.owner + "-net" }

// poolFlags are the seed's network options on the test subnet: gateway .200,
// aux address DefaultGatewayIPv4=.1, Docker's own range .224/27.
func (p *platform) poolFlags() []string {
	return []string{"-pool-network", p.networkName(), "-pool-bridge", "br-" + strings.TrimPrefix(p.owner, "oak-e2e-") + "e2e",
		"-pool-subnet", p.subnet.String(), "-pool-gateway", p.gateway.String(),
		"-pool-aux-address", "DefaultGatewayIPv4=" + p.at(1).String(), "-pool-ip-range", p.at(224).String() + "/27"}
}

// startCoreDNS starts bin/coredns on the gateway address, port 53 (Docker
// forwards containers' queries there; --dns takes no port).
func (p *platform) startCoreDNS() {
	p.t.Helper()
	p.coredns = start(p.t, []string{"MARATHON_URL=" + p.simURL}, "coredns", "-conf", p.corefile, "-dns.port", "53")
	if err := p.coredns.waitOutput("CoreDNS-", 30*time.Second); err != nil {
		p.t.Fatalf("coredns: %v\n%s", err, p.coredns.output())
	}
}

// deploy posts an oakbox app to nginxctl's POST /v1/apps, with --dns at
// oak's CoreDNS, and returns the address the pool gave it.
func (p *platform) deploy(a appSpec) string {
	p.t.Helper()
	status, raw := p.deployAnswer(a)
	var out struct {
		Address string `json:"address"`
	}
	if status/100 != 2 || json.Unmarshal(raw, &out) != nil {
		p.t.Fatalf("POST /v1/apps %s: %d %s", a.id, status, raw)
	}
	// A pool address: in the subnet, outside Docker's own range, neither
	// the gateway nor the aux address.
	if got, err := netip.ParseAddr(out.Address); err != nil || !p.subnet.Contains(got) ||
		netip.PrefixFrom(p.at(224), 27).Contains(got) || got == p.gateway || got == p.at(1) {
		p.t.Fatalf("POST /v1/apps %s: address %q is not one the pool may give", a.id, out.Address)
	}
	return out.Address
}

// relabel sets one label of a deployed app in Marathon itself (PUT
// /v2/apps/{id}?force=true with the app's labels, as Marathon's UI sends
// them; forced, since the app's deployment may still be waiting for its
// health checks), bypassing nginxctl.
func (p *platform) relabel(app, key, value string) {
	p.t.Helper()
	a, err := p.marathon.Application(app)
	if err != nil || a.Labels == nil {
		p.t.Fatalf("%s: %v %v", app, a, err)
	}
	labels := maps.Clone(*a.Labels)
	labels[key] = value
	body, _ := json.Marshal(map[string]any{"labels": labels})
	req, _ := http.NewRequest(http.MethodPut, p.simURL+"/v2/apps"+app+"?force=true", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if raw, _ := io.ReadAll(resp.Body); resp.StatusCode/100 != 2 {
		p.t.Fatalf("PUT /v2/apps%s: %s %s", app, resp.Status, raw)
	}
}

// deployAnswer posts an oakbox app to nginxctl's POST /v1/apps and returns the
// answer's status and body.
func (p *platform) deployAnswer(a appSpec) (int, []byte) {
	p.t.Helper()
	labels := map[string]string{"OAK_NAMES": a.names}
	if a.env != "" {
		labels["OAK_ENV"] = a.env
	}
	if a.http {
		labels["OAK_HTTP"] = "app1.example.com:8080"
	}
	maps.Copy(labels, a.labels)
	name := a.name
	if name == "" {
		name = a.id
	}
	def := map[string]any{
		"id": a.id, "cpus": 0.1, "mem": 32, "env": map[string]string{"NAME": name}, "labels": labels,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{
			"image": p.img, "network": "BRIDGE",
			"parameters": []map[string]string{{"key": "dns", "value": p.gateway.String()}},
		}},
	}
	body, _ := json.Marshal(def)
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.apiAddr+"/v1/apps", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// containerOf waits for app's running task and returns its container.
func (p *platform) containerOf(app string) container.InspectResponse {
	p.t.Helper()
	var info container.InspectResponse
	waitFor(p.t, app+"'s container", func() error {
		a, err := p.marathon.Application(app)
		if err != nil {
			return err
		}
		for _, task := range a.Tasks {
			if task.State != "TASK_RUNNING" {
				continue
			}
			list, err := p.cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
				filters.Arg("label", marathonsim.OwnerLabel+"="+p.owner), filters.Arg("label", marathonsim.TaskLabel+"="+task.ID))})
			if err != nil || len(list) != 1 {
				return fmt.Errorf("container of %s: %v %v", task.ID, list, err)
			}
			info, err = p.cli.ContainerInspect(context.Background(), list[0].ID)
			return err
		}
		return fmt.Errorf("no running task: %+v", a.Tasks)
	})
	return info
}

// expectContainerAt checks that app's container runs on exactly addr and
// that Marathon's task reports it.
func (p *platform) expectContainerAt(app, addr string) {
	p.t.Helper()
	info := p.containerOf(app)
	ep := info.NetworkSettings.Networks[p.networkName()]
	if ep == nil || ep.IPAddress != addr || len(info.NetworkSettings.Networks) != 1 {
		p.t.Fatalf("%s's container networks %+v, want only %s on %s", app, info.NetworkSettings.Networks, addr, p.networkName())
	}
	if !slices.Equal(info.HostConfig.DNS, []string{p.gateway.String()}) {
		p.t.Fatalf("%s's container has --dns %v, want oak's CoreDNS at %s", app, info.HostConfig.DNS, p.gateway)
	}
	a, err := p.marathon.Application(app)
	if err != nil || len(a.Tasks) != 1 || len(a.Tasks[0].IPAddresses) != 1 || a.Tasks[0].IPAddresses[0].IPAddress != addr {
		p.t.Fatalf("%s's Marathon task: %+v %v, want %s", app, a.Tasks, err, addr)
	}
}

// probe runs oakbox's probe inside app's container and returns its one
// line's answer (after the argument).
func (p *platform) probe(app string, args ...string) (string, error) {
	id, ok := p.containers[app]
	if !ok {
		id = p.containerOf(app).ID
		p.containers[app] = id
	}
	out, err := dockertest.Exec(context.Background(), p.cli, id, append([]string{"/oakbox", "probe"}, args...)...)
	if err != nil {
		delete(p.containers, app) // replaced meanwhile, maybe: look it up again
		return "", err
	}
	line := strings.TrimSpace(out)
	_, answer, _ := strings.Cut(line, " ")
	return answer, nil
}

// expectResolve polls, from inside from's container, the system resolver
// for name until it gives want ("" = not found). An answer that is
// neither want, an error (SERVFAIL while CoreDNS syncs) nor one of the
// interim answers of a change under way fails the test: no client may be
// handed a wrong address on the way.
func (p *platform) expectResolve(stage, from, name, want string, interim ...string) {
	p.t.Helper()
	waitFor(p.t, fmt.Sprintf("%s: %s resolves %s to %q", stage, from, name, want), func() error {
		got, err := p.probe(from, "resolve", name)
		if err != nil {
			return err
		}
		switch {
		case got == want, want == "" && strings.Contains(got, "no such host"):
			p.t.Logf("%s: %s resolves %s: %s", stage, from, name, got)
			return nil
		case strings.HasPrefix(got, "error:") || slices.Contains(interim, got):
			return fmt.Errorf("got %s", got)
		}
		p.t.Fatalf("%s: %s resolves %s to %s, want %q", stage, from, name, got, want)
		return nil
	})
}

// expectHTTP polls, from inside from's container, http://app1.example.com/
// through oak's Nginx on the gateway until the backend that answers names
// itself want.
func (p *platform) expectHTTP(stage, from, want string) {
	p.t.Helper()
	waitFor(p.t, fmt.Sprintf("%s: %s reaches app1.example.com's %s", stage, from, want), func() error {
		got, err := p.probe(from, "get", "-connect", p.gateway.String()+":80", "http://app1.example.com/")
		if err != nil {
			return err
		}
		if got != "200 "+want {
			return fmt.Errorf("got %s", got)
		}
		p.t.Logf("%s: %s gets http://app1.example.com/ through Nginx: %s", stage, from, got)
		return nil
	})
}

// get returns the body of nginxctl's API path.
func (p *platform) get(path string) string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.apiAddr + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitStreams waits until n clients follow Marathon's event stream.
func (p *platform) waitStreams(n int) {
	p.t.Helper()
	waitFor(p.t, fmt.Sprintf("%d event streams", n), func() error {
		resp, err := http.Get(p.simURL + "/_sim/state")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var state struct{ Streams int }
		if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
			return err
		}
		if state.Streams != n {
			return fmt.Errorf("%d streams", state.Streams)
		}
		return nil
	})
}

func (p *platform) simAdmin(op string, body map[string]any) {
	p.t.Helper()
	simAdmin(p.t, p.simURL, op, body)
}

// freezeMarathon stops the simulator's process (SIGSTOP): it answers
// nothing, as a master that is down, while its containers keep running as
// Mesos tasks do without Marathon.
func (p *platform) freezeMarathon() {
	p.t.Helper()
	if err := p.sim.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(p.thawMarathon) // so that it can stop at the end even if a check fails
}

func (p *platform) thawMarathon() {
	_ = p.sim.Cmd.Process.Signal(syscall.SIGCONT)
}
