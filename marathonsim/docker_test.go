package marathonsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/internal/dockertest"
	"github.com/oakdns/oak/internal/poll"
)

func TestPlanContainer(t *testing.T) {
	cmd := "echo hi"
	base := func(params ...dockerParam) *app {
		return &app{id: "/env/web", spec: appSpec{
			Labels: map[string]string{"OAK_ENV": "env", OwnerLabel: "someone-else", "bad-key": "x"},
			Env:    map[string]json.RawMessage{"NAME": json.RawMessage(`"web"`), "SECRET": json.RawMessage(`{"secret":"s"}`)},
			Container: &containerSpec{Type: "DOCKER", Docker: &dockerSpec{Image: "img:1", Network: "HOST", Parameters: params},
				Volumes: []volumeSpec{{ContainerPath: "/data", HostPath: "/srv/web", Mode: "RO"}}},
		}}
	}
	tk := &task{ID: "env_web.1234", Version: "2026-01-01T00:00:00.000Z", Ports: []int{31000}}
	tests := []struct {
		name    string
		app     *app
		check   func(t *testing.T, p containerPlan)
		wantErr string
	}{
		{name: "host network, Marathon's env and labels", app: base(), check: func(t *testing.T, p containerPlan) {
			if p.host.NetworkMode != "host" || p.endpoint != nil || p.config.Image != "img:1" || p.name != "mesos-env_web.1234" {
				t.Errorf("plan %+v %+v", p.config, p.host)
			}
			for _, kv := range []string{"NAME=web", "MARATHON_APP_ID=/env/web", "MESOS_TASK_ID=env_web.1234", "PORT0=31000",
				"MARATHON_APP_LABEL_OAK_ENV=env", "HOST=127.0.0.1"} {
				if !slices.Contains(p.config.Env, kv) {
					t.Errorf("env %v lacks %s", p.config.Env, kv)
				}
			}
			if slices.ContainsFunc(p.config.Env, func(kv string) bool { return strings.HasPrefix(kv, "SECRET=") }) {
				t.Errorf("a secret reference became a variable: %v", p.config.Env)
			}
			if p.config.Labels["OAK_ENV"] != "env" || p.config.Labels[OwnerLabel] != "owner" || p.config.Labels[TaskLabel] != tk.ID {
				t.Errorf("labels %v", p.config.Labels)
			}
			if !slices.Equal(p.host.Binds, []string{"/srv/web:/data:ro"}) {
				t.Errorf("binds %v", p.host.Binds)
			}
		}},
		{name: "net and ip parameters", app: base(dockerParam{"net", "oak-net"}, dockerParam{"ip", "10.199.45.7"},
			dockerParam{"dns", "10.199.45.200"}, dockerParam{"label", "team=a"}, dockerParam{"e", "X=1=2"}), check: func(t *testing.T, p containerPlan) {
			ep := p.endpoint.EndpointsConfig["oak-net"]
			if p.host.NetworkMode != "oak-net" || p.network != "oak-net" || ep == nil || ep.IPAMConfig.IPv4Address != "10.199.45.7" {
				t.Errorf("network %s %+v", p.host.NetworkMode, p.endpoint)
			}
			if !slices.Equal(p.host.DNS, []string{"10.199.45.200"}) || p.config.Labels["team"] != "a" || !slices.Contains(p.config.Env, "X=1=2") {
				t.Errorf("dns %v labels %v env %v", p.host.DNS, p.config.Labels, p.config.Env)
			}
		}},
		{name: "cmd runs in a shell", app: func() *app { a := base(); a.spec.Cmd = &cmd; return a }(), check: func(t *testing.T, p containerPlan) {
			if !slices.Equal(p.config.Entrypoint, []string{"/bin/sh", "-c"}) || !slices.Equal(p.config.Cmd, []string{cmd}) {
				t.Errorf("entrypoint %v cmd %v", p.config.Entrypoint, p.config.Cmd)
			}
		}},
		{name: "unknown parameter", app: base(dockerParam{"privileged-ish", "1"}), wantErr: `docker parameter "privileged-ish" is not supported`},
		{name: "ip without a user network", app: base(dockerParam{"ip", "10.1.2.3"}), wantErr: "needs a user-defined network"},
		{name: "ip not an address", app: base(dockerParam{"net", "n"}, dockerParam{"ip", "10.1.2"}), wantErr: "not an IPv4 address"},
		{name: "label without =", app: base(dockerParam{"label", "x"}), wantErr: "want KEY=VALUE"},
		{name: "USER without a network name", app: func() *app { a := base(); a.spec.Container.Docker.Network = "USER"; return a }(), wantErr: "ipAddress.networkName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planContainer(tt.app, tk, "owner", "127.0.0.1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

// TestDockerMode runs tasks as real containers of a test image on a test
// network: fixed and Docker-chosen addresses, a crash and its replacement,
// a definition Docker refuses, and the clean-up at start and at Close.
func TestDockerMode(t *testing.T) {
	cli := dockertest.Require(t)
	ctx := context.Background()
	img := dockertest.GoImage(t, cli, "github.com/oakdns/oak/test/image/oakbox", "oak-marathonsim-oakbox")
	subnet := dockertest.UnusedSubnet(t, cli)
	suffix := dockertest.Suffix()
	netName := "oak-marathonsim-test-" + suffix
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.String()}}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.NetworkRemove(context.Background(), netName); err != nil {
			t.Errorf("removing network %s: %v", netName, err)
		}
	})
	owner := "marathonsim-test-" + suffix

	// A container left by an earlier run of the same owner goes at start.
	leftover, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: map[string]string{OwnerLabel: owner}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), leftover.ID, container.RemoveOptions{Force: true})
	})
	opts := fast()
	opts.RestartBackoff = 10 * time.Millisecond
	opts.HealthCheckInterval = 100 * time.Millisecond
	opts.Docker = &Docker{Client: cli, Owner: owner}
	f := start(t, opts)
	if ids := ownedContainers(t, cli, owner); len(ids) != 0 {
		t.Fatalf("containers left at start: %v", ids)
	}

	fixed := subnet.Addr().Next().Next().Next().Next().Next() // .5
	web := marathon.NewDockerApplication().Name("/env/web").Count(1)
	web.Container.Docker.Container(img).Host().AddParameter("net", netName).AddParameter("ip", fixed.String())
	web.AddEnv("NAME", "web of env")
	web.AddLabel("OAK_ENV", "env")
	if _, err := f.client.CreateApplication(web); err != nil {
		t.Fatal(err)
	}
	first := runningTask(t, f, "/env/web", "")
	if !slices.Equal(first.ips, []string{fixed.String()}) {
		t.Fatalf("task reports %v, want the fixed address %s", first.ips, fixed)
	}
	info := containerOf(t, cli, owner, first.id)
	if got := info.NetworkSettings.Networks[netName]; got == nil || got.IPAddress != fixed.String() {
		t.Fatalf("container networks %+v", info.NetworkSettings.Networks)
	}
	if !slices.Contains(info.Config.Env, "MARATHON_APP_ID=/env/web") || info.Config.Labels["OAK_ENV"] != "env" {
		t.Errorf("container env %v labels %v", info.Config.Env, info.Config.Labels)
	}
	expectBody(t, "http://"+fixed.String()+":8080/", "web of env")

	// A crash: the container dies, the task fails, a replacement runs
	// on the same address.
	if err := cli.ContainerKill(ctx, info.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	second := runningTask(t, f, "/env/web", first.id)
	app, err := f.client.Application("/env/web")
	if err != nil {
		t.Fatal(err)
	}
	if app.LastTaskFailure == nil || app.LastTaskFailure.TaskID != first.id || !strings.Contains(app.LastTaskFailure.Message, "exited with status 137") {
		t.Errorf("lastTaskFailure %+v, want %s exited with 137", app.LastTaskFailure, first.id)
	}
	if !slices.Equal(second.ips, []string{fixed.String()}) {
		t.Errorf("replacement reports %v", second.ips)
	}
	expectBody(t, "http://"+fixed.String()+":8080/", "web of env")

	// An upgrade that kills before it starts (as nginxctl's deploy API
	// asks of fixed addresses): the new task gets the address once the old
	// container is gone, with no failure on the way.
	zero := 0.0
	upgrade := marathon.NewDockerApplication().Name("/env/web").Count(1)
	upgrade.Container.Docker.Container(img).Host().AddParameter("net", netName).AddParameter("ip", fixed.String())
	upgrade.AddEnv("NAME", "web of env, v2")
	upgrade.SetUpgradeStrategy(marathon.UpgradeStrategy{MinimumHealthCapacity: &zero, MaximumOverCapacity: &zero})
	if _, err := f.client.UpdateApplication(upgrade, false); err != nil {
		t.Fatal(err)
	}
	runningTask(t, f, "/env/web", second.id)
	expectBody(t, "http://"+fixed.String()+":8080/", "web of env, v2")
	if app, err = f.client.Application("/env/web"); err != nil || app.LastTaskFailure == nil || app.LastTaskFailure.TaskID != first.id {
		t.Errorf("a task failed during the upgrade: %+v %v", app.LastTaskFailure, err)
	}

	// No ip parameter: the task reports the address Docker chose.
	dyn := marathon.NewDockerApplication().Name("/env/dynamic").Count(1)
	dyn.Container.Docker.Container(img).Host().AddParameter("net", netName)
	if _, err := f.client.CreateApplication(dyn); err != nil {
		t.Fatal(err)
	}
	d := runningTask(t, f, "/env/dynamic", "")
	if len(d.ips) != 1 || !subnet.Contains(netip.MustParseAddr(d.ips[0])) {
		t.Fatalf("dynamic task reports %v, want one address of %s", d.ips, subnet)
	}
	expectBody(t, "http://"+d.ips[0]+":8080/", "/env/dynamic") // named by MARATHON_APP_ID

	// Docker refuses a fixed address on the default bridge: the task fails
	// with Docker's reason, as on Mesos.
	bad := marathon.NewDockerApplication().Name("/env/bad").Count(1)
	bad.Container.Docker.Container(img).Bridged().AddParameter("ip", "10.9.9.9")
	if _, err := f.client.CreateApplication(bad); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/env/bad to fail", func() error {
		a, err := f.client.Application("/env/bad")
		if err != nil {
			return err
		}
		if a.LastTaskFailure == nil || !strings.Contains(a.LastTaskFailure.Message, "user-defined network") {
			return fmt.Errorf("lastTaskFailure %+v", a.LastTaskFailure)
		}
		return nil
	})
	if _, err := f.client.DeleteApplication("/env/bad", true); err != nil {
		t.Fatal(err)
	}

	// Health checks are probed for real: HTTP on the container's address
	// passes; a TCP check on a closed port kills the task, and Marathon
	// starts another.
	checked := marathon.NewDockerApplication().Name("/env/checked").Count(1)
	checked.Container.Docker.Container(img).Host().AddParameter("net", netName)
	path, port := "/health", 8080
	checked.AddHealthCheck(marathon.HealthCheck{Protocol: "HTTP", Path: &path, Port: &port, GracePeriodSeconds: 30, TimeoutSeconds: 2})
	if _, err := f.client.CreateApplication(checked); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/env/checked to pass its check", func() error {
		a, err := f.client.Application("/env/checked")
		if err != nil {
			return err
		}
		if a.TasksHealthy != 1 {
			return fmt.Errorf("%d healthy tasks", a.TasksHealthy)
		}
		return nil
	})
	sick := `{"id": "/env/sick", "container": {"type": "DOCKER", "docker": {"image": "` + img + `", "network": "HOST",
		"parameters": [{"key": "net", "value": "` + netName + `"}]}},
		"healthChecks": [{"protocol": "TCP", "port": 9, "gracePeriodSeconds": 0, "maxConsecutiveFailures": 1, "timeoutSeconds": 1}]}`
	resp, err := http.Post(f.srv.URL+"/v2/apps", "application/json", strings.NewReader(sick))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v2/apps /env/sick: %v %v", resp, err)
	}
	resp.Body.Close()
	sickTask := runningTask(t, f, "/env/sick", "")
	runningTask(t, f, "/env/sick", sickTask.id) // its replacement
	for _, id := range []string{"/env/checked", "/env/sick"} {
		if _, err := f.client.DeleteApplication(id, true); err != nil {
			t.Fatal(err)
		}
	}

	// Deleting an app removes its container; Close removes the rest.
	if _, err := f.client.DeleteApplication("/env/dynamic", true); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/env/dynamic's container to go", func() error {
		if ids := ownedContainers(t, cli, owner); len(ids) != 1 {
			return fmt.Errorf("containers %v, want web's only", ids)
		}
		return nil
	})
	f.sim.Close()
	if ids := ownedContainers(t, cli, owner); len(ids) != 0 {
		t.Fatalf("containers left after Close: %v", ids)
	}
}

func TestProbeTarget(t *testing.T) {
	addr := netip.MustParseAddr("10.1.2.3")
	mapped := appSpec{Container: &containerSpec{Docker: &dockerSpec{PortMappings: []portMapping{{ContainerPort: 80}, {ContainerPort: 8080}}}}}
	defined := appSpec{PortDefinitions: []portDefinition{{Port: 53}, {Port: 8053}}}
	tk := &task{Ports: []int{31000, 31001}}
	tests := []struct {
		name  string
		spec  appSpec
		check healthCheck
		addr  netip.Addr
		want  string
	}{
		{"fixed port on the container", defined, healthCheck{port: 9000, portIndex: 1}, addr, "10.1.2.3:9000"},
		{"port mapping's container port", mapped, healthCheck{portIndex: 1}, addr, "10.1.2.3:8080"},
		{"port definition on the container", defined, healthCheck{portIndex: 1}, addr, "10.1.2.3:8053"},
		{"host network: the agent's host port", defined, healthCheck{portIndex: 1}, netip.Addr{}, "127.0.0.1:31001"},
	}
	for _, tt := range tests {
		got, err := probeTarget(tt.spec, tk, tt.check, tt.addr, "127.0.0.1")
		if err != nil || got != tt.want {
			t.Errorf("%s: %q %v, want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := probeTarget(appSpec{}, tk, healthCheck{portIndex: 2}, netip.Addr{}, "127.0.0.1"); err == nil {
		t.Error("portIndex past the task's ports: no error")
	}
}

type taskView struct {
	id  string
	ips []string
}

// runningTask waits for a running task of app other than not.
func runningTask(t *testing.T, f *fixture, app, not string) taskView {
	t.Helper()
	var got taskView
	waitUntil(t, app+" to run a task", func() error {
		a, err := f.client.Application(app)
		if err != nil {
			return err
		}
		for _, tk := range a.Tasks {
			if tk.State == "TASK_RUNNING" && tk.ID != not {
				got = taskView{id: tk.ID}
				for _, ip := range tk.IPAddresses {
					got.ips = append(got.ips, ip.IPAddress)
				}
				return nil
			}
		}
		var states []string
		for _, tk := range a.Tasks {
			states = append(states, tk.ID+" "+tk.State)
		}
		return fmt.Errorf("tasks %v, last failure %+v", states, a.LastTaskFailure)
	})
	return got
}

func ownedContainers(t *testing.T, cli *dockerclient.Client, owner string) []string {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", OwnerLabel+"="+owner))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.Names...)
	}
	return ids
}

func containerOf(t *testing.T, cli *dockerclient.Client, owner, taskID string) container.InspectResponse {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", OwnerLabel+"="+owner), filters.Arg("label", TaskLabel+"="+taskID))})
	if err != nil || len(list) != 1 {
		t.Fatalf("container of task %s: %v %v", taskID, list, err)
	}
	info, err := cli.ContainerInspect(context.Background(), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// expectBody polls url until it answers 200 with body (trimmed).
func expectBody(t *testing.T, url, body string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitUntil(t, url+" to answer "+body, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(string(b)); resp.StatusCode != 200 || got != body {
			return fmt.Errorf("%d %q", resp.StatusCode, got)
		}
		return nil
	})
}

func waitUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), what, 60*time.Second, 20*time.Millisecond, cond); err != nil {
		t.Fatal(err)
	}
}
