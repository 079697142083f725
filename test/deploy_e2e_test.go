package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/oakdns/oak/internal/dockertest"
	"github.com/oakdns/oak/internal/testutil"
)

// TestDeployedUnderMarathon runs oak itself as Marathon apps: it builds the
// images of deploy/marathon/, posts the app definitions there to
// bin/marathon-sim -docker (with this machine's addresses and ports), and
// the platform runs from those containers. Killing the CoreDNS container or
// the nginxctl one makes Marathon (the simulator) start it again, and the
// new one resyncs: the same answers from inside the apps' containers, and
// the pool keeps every address (nginxctl's state volume).
func TestDeployedUnderMarathon(t *testing.T) {
	nginxPath := testutil.RequireTool(t, "nginx") // goes into the nginxctl image
	lddPath := testutil.RequireTool(t, "ldd")
	// Built before the simulator starts, so that they are removed after
	// it stopped and removed its containers.
	cli := dockertest.Require(t)
	corednsImage := dockertest.BuildImage(t, cli, "oak-e2e-coredns", map[string][]byte{
		"Dockerfile": readDeploy(t, "coredns/Dockerfile"),
		"Corefile":   readDeploy(t, "coredns/Corefile"),
		"coredns":    dockertest.StaticBinary(t, "github.com/oakdns/oak/cmd/coredns"),
	})
	nginxctlFiles := nginxRootfs(t, nginxPath, lddPath)
	nginxctlFiles["Dockerfile"] = readDeploy(t, "nginxctl/Dockerfile")
	nginxctlFiles["nginxctl"] = dockertest.StaticBinary(t, "github.com/oakdns/oak/cmd/nginxctl")
	nginxctlImage := dockertest.BuildImage(t, cli, "oak-e2e-nginxctl", nginxctlFiles)
	p := newPlatform(t)

	// The definitions as an operator posts them, with this machine's values.
	dns := readDefinition(t, "coredns.json")
	dns["container"].(map[string]any)["docker"].(map[string]any)["image"] = corednsImage
	// One agent here: Marathon would leave a second instance unplaced too
	// (constraint hostname UNIQUE).
	dns["instances"] = 1
	env := dns["env"].(map[string]any)
	env["MARATHON_URL"], env["OAK_DNS_BIND"], env["OAK_IP_POOL"] = p.simURL, p.gateway.String(), p.subnet.String()
	healthPort, readyPort := freePort(t), freePort(t)
	env["OAK_HEALTH_ADDR"] = fmt.Sprintf("127.0.0.1:%d", healthPort)
	env["OAK_READY_ADDR"] = fmt.Sprintf("127.0.0.1:%d", readyPort)
	setPort(t, dns, "health", healthPort)
	setPort(t, dns, "ready", readyPort)

	state := filepath.Join(p.dir, "nginxctl-state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "api-token"), []byte(p.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl := readDefinition(t, "nginxctl.json")
	c := ctl["container"].(map[string]any)
	c["docker"].(map[string]any)["image"] = nginxctlImage
	c["volumes"].([]any)[0].(map[string]any)["hostPath"] = state
	apiPort := freePort(t)
	p.apiAddr = fmt.Sprintf("127.0.0.1:%d", apiPort)
	setPort(t, ctl, "api", apiPort)
	args := ctl["args"].([]any)
	for _, kv := range [][2]string{
		{"-marathon", p.simURL}, {"-http", p.gateway.String() + ":80"}, {"-listen", p.apiAddr},
		{"-control", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, {"-ip_pool", p.subnet.String()},
	} {
		args = setFlag(t, args, kv[0], kv[1])
	}
	pool := p.poolFlags()
	for i := 0; i < len(pool); i += 2 {
		args = setFlag(t, args, pool[i], pool[i+1])
	}
	// A first install: the pool has never handed out an address (no effect
	// on the restarts, whose store exists); short batches for the test.
	ctl["args"] = append(args, "-pool-fresh", "-wait-min", "100ms", "-wait-max", "1s")

	p.postApp(dns)
	p.postApp(ctl)
	p.waitAPI()
	p.expectHealthy("/oak/coredns")  // its /health, probed by the simulator
	p.expectHealthy("/oak/nginxctl") // its /healthz

	apps := []appSpec{
		{id: "/integration/app1", names: "app1.example.com", http: true},
		{id: "/integration/redis1", names: "redis1.db.example.com"},
		{id: "/feature-login/app1", env: "feature-login", names: "app1.example.com", http: true},
		{id: "/feature-login/redis1", env: "feature-login", names: "redis1.db.example.com"},
	}
	addr := map[string]string{}
	for _, a := range apps {
		addr[a.id] = p.deploy(a)
		p.expectContainerAt(a.id, addr[a.id])
	}
	expectAll := func(stage string) {
		t.Helper()
		p.expectResolve(stage, "/feature-login/app1", "redis1.db.example.com", addr["/feature-login/redis1"])
		p.expectResolve(stage, "/integration/app1", "redis1.db.example.com", addr["/integration/redis1"])
		p.expectHTTP(stage, "/feature-login/app1", "/feature-login/app1")
		p.expectHTTP(stage, "/integration/app1", "/integration/app1")
	}
	expectAll("deployed under Marathon")

	for _, app := range []string{"/oak/coredns", "/oak/nginxctl"} {
		before := p.containerOf(app)
		if err := p.cli.ContainerKill(context.Background(), before.ID, "KILL"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, app+" started again by Marathon", func() error {
			if after := p.containerOf(app); after.ID == before.ID {
				return fmt.Errorf("still the killed container")
			}
			return nil
		})
		p.expectHealthy(app)
		if app == "/oak/nginxctl" {
			p.waitAPI()
		}
		expectAll("after " + app + " was killed")
	}
	// The pool's record survived nginxctl's restart: a new app gets an
	// address nobody holds.
	extra := appSpec{id: "/feature-login/db1", env: "feature-login", names: "db1.db.example.com"}
	got := p.deploy(extra)
	for id, a := range addr {
		if a == got {
			t.Fatalf("%s got %s, which %s holds", extra.id, got, id)
		}
	}
	p.expectResolve("after the restarts", "/feature-login/app1", "db1.db.example.com", got)
}

func readDeploy(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "marathon", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readDefinition(t *testing.T, name string) map[string]any {
	t.Helper()
	var def map[string]any
	if err := json.Unmarshal(readDeploy(t, name), &def); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return def
}

// setFlag sets the value after flag name in args, which must hold it.
func setFlag(t *testing.T, args []any, name, value string) []any {
	t.Helper()
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			args[i+1] = value
			return args
		}
	}
	t.Fatalf("the definition's args have no %s: %v", name, args)
	return nil
}

// setPort sets the port of the definition's portDefinitions entry name.
func setPort(t *testing.T, def map[string]any, name string, port int) {
	t.Helper()
	for _, d := range def["portDefinitions"].([]any) {
		if d := d.(map[string]any); d["name"] == name {
			d["port"] = port
			return
		}
	}
	t.Fatalf("%v has no port named %s", def["id"], name)
}

// expectHealthy waits until app's task passes its health checks.
func (p *platform) expectHealthy(app string) {
	p.t.Helper()
	waitFor(p.t, app+" healthy", func() error {
		a, err := p.marathon.Application(app)
		if err != nil {
			return err
		}
		if a.TasksHealthy != 1 {
			return fmt.Errorf("%d healthy tasks of %d", a.TasksHealthy, a.TasksRunning)
		}
		return nil
	})
}

// postApp posts an app definition to Marathon's POST /v2/apps.
func (p *platform) postApp(def map[string]any) {
	p.t.Helper()
	body, _ := json.Marshal(def)
	resp, err := http.Post(p.simURL+"/v2/apps", "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		p.t.Fatalf("POST /v2/apps %v: %s %s", def["id"], resp.Status, msg)
	}
}

// nginxRootfs is the rootfs/ of the nginxctl image's build context: this
// machine's Nginx (Debian's package) with the libraries it links, users
// root and nobody (Nginx's workers), and the directories it opens.
func nginxRootfs(t *testing.T, nginxPath, lddPath string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"rootfs/etc/passwd":          []byte("root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/:/nonexistent\n"),
		"rootfs/etc/group":           []byte("root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n"),
		"rootfs/tmp/.keep":           nil,
		"rootfs/var/log/nginx/.keep": nil,
		"rootfs/var/lib/nginx/.keep": nil,
	}
	out, err := exec.Command(lddPath, nginxPath).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", nginxPath, err)
	}
	paths := append([]string{nginxPath}, regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllString(string(out), -1)...)
	for _, path := range paths {
		path = strings.TrimSuffix(path, " (0x")
		body, err := os.ReadFile(path) // follows the libraries' symlinks
		if err != nil {
			t.Fatal(err)
		}
		files["rootfs"+path] = body
	}
	if _, ok := files["rootfs/usr/sbin/nginx"]; !ok {
		t.Fatalf("nginx at %s, not /usr/sbin/nginx as the definition names it", nginxPath)
	}
	return files
}
