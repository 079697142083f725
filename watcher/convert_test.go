package watcher

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/testutil"
)

// recordedApps decodes the /v2/apps?embed=apps.tasks body recorded from
// Marathon 1.5 (testdata/marathon/marathon-lb, see its README) as go-marathon
// does.
func recordedApps(t *testing.T) []marathon.Application {
	t.Helper()
	body := testutil.ReadFixture(t, "marathon/marathon-lb/marathon15_apps.json")
	var list marathon.Applications
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(list.Apps) != 1 || list.Apps[0].ID != "/pywebserver" {
		t.Fatalf("unexpected fixture content: %+v", list.Apps)
	}
	return list.Apps
}

func TestAppOfRecorded(t *testing.T) {
	got := appOf(&recordedApps(t)[0])
	want := catalog.App{
		ID:           "/pywebserver",
		Version:      "2017-07-19T17:34:41.967Z",
		ConfigChange: "2017-07-19T17:34:41.967Z",
		Labels:       map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "myvhost.com"},
		Tasks: []catalog.Task{{
			ID:    "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc",
			State: "TASK_RUNNING",
			Host:  "10.0.2.148",
			IPs:   []string{"172.17.0.2"},
			Ports: []int{1565},
		}},
	}
	// Marathon 1.5 moved portMappings from container.docker to container,
	// where go-marathon v0.7.1 does not read them: the app has no ports.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("appOf =\n%+v\nwant\n%+v", got, want)
	}
}

func TestAppOfEdges(t *testing.T) {
	port := 8080
	params := []marathon.Parameters{{Key: "net", Value: "oak-net"}, {Key: "ip", Value: "10.199.45.23"}}
	mappings := []marathon.PortMapping{{ContainerPort: 6379, Name: "redis"}}
	a := marathon.Application{
		ID:              "/a",
		PortDefinitions: &[]marathon.PortDefinition{{Port: &port, Name: "http", Protocol: "tcp"}},
		Container:       &marathon.Container{Docker: &marathon.Docker{Parameters: &params, PortMappings: &mappings}},
		HealthChecks:    &[]marathon.HealthCheck{{}, {}},
		Tasks: []*marathon.Task{nil, {
			ID: "a.1", HealthCheckResults: []*marathon.HealthCheckResult{{Alive: true}, nil},
			IPAddresses: []*marathon.IPAddress{nil, {IPAddress: "10.0.0.1"}},
		}},
	}
	got := appOf(&a)
	want := catalog.App{
		ID:           "/a",
		Ports:        []catalog.PortSpec{{Name: "http", Number: 8080, Protocol: "tcp"}}, // portDefinitions win
		DockerIP:     "10.199.45.23",
		HealthChecks: 2,
		Tasks:        []catalog.Task{{ID: "a.1", IPs: []string{"10.0.0.1"}, Health: []bool{true, false}}}, // a nil result is not alive
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("appOf =\n%+v\nwant\n%+v", got, want)
	}
	a.PortDefinitions = nil
	if got := appOf(&a).Ports; !reflect.DeepEqual(got, []catalog.PortSpec{{Name: "redis", Number: 6379}}) {
		t.Errorf("ports from docker portMappings = %+v", got)
	}
}

// TestRecordedClassification: the recorded app, as the catalog sees it
// after conversion, classifies its container and not its agent.
func TestRecordedClassification(t *testing.T) {
	apps := appsOf(recordedApps(t))
	container := netip.MustParseAddr("172.17.0.2") // the task's ipAddresses
	agent := netip.MustParseAddr("10.0.2.148")     // the task's host
	for _, prefix := range []string{"", "HAPROXY_"} {
		policy, err := catalog.NewPolicy(catalog.PolicyConfig{LabelPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		s := catalog.Build(policy, apps)
		want := catalog.Stats{Apps: 1, Tasks: 1, LiveTasks: 1, Envs: 1}
		if got := s.Stats(); got != want {
			t.Errorf("prefix %q: Stats() = %+v, want %+v", prefix, got, want)
		}
		if env, how := s.EnvOf(container); env != "integration" || how != catalog.ByApp {
			t.Errorf("EnvOf(task ip) = %s %v", env, how)
		}
		if env, how := s.EnvOf(agent); env != "integration" || how != catalog.ByDefault {
			t.Errorf("EnvOf(agent) = %s %v", env, how)
		}
	}
}

// TestRecordedWithOakLabels: the recorded app with oak labels: its task's
// own address serves its name and vhost and classifies its container over
// a CIDR rule; with a health check and no results it serves nothing.
func TestRecordedWithOakLabels(t *testing.T) {
	app := appsOf(recordedApps(t))[0]
	app.Labels = map[string]string{"OAK_ENV": "feature-py", "OAK_NAMES": "pywebserver.example.com", "OAK_HTTP": "myvhost.com"}
	container := netip.MustParseAddr("172.17.0.2")
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{CIDRs: []catalog.CIDRRule{{Prefix: netip.MustParsePrefix("172.17.0.0/16"), Env: "docker"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := catalog.Build(policy, []catalog.App{app})
	if answer := s.Resolve("feature-py", "pywebserver.example.com"); answer.Kind != catalog.Served || !reflect.DeepEqual(answer.Service.Addrs, []netip.Addr{container}) {
		t.Errorf("Resolve = %+v", answer)
	}
	if env, how := s.EnvOf(container); env != "feature-py" || how != catalog.ByApp {
		t.Errorf("EnvOf(task ip) = %s %v; the app wins over the CIDR rule", env, how)
	}
	if env, how := s.EnvOf(netip.MustParseAddr("172.17.0.3")); env != "docker" || how != catalog.ByCIDR {
		t.Errorf("EnvOf(other container) = %s %v", env, how)
	}
	if got := s.Reverse(container); !reflect.DeepEqual(got, []catalog.NameRef{{Name: "pywebserver.example.com", Env: "feature-py"}}) {
		t.Errorf("Reverse = %v", got)
	}
	if got := s.ResolveVHost("feature-py", "myvhost.com"); got.Kind != catalog.Served || got.Service.Backends[0].Ports[0].Number != 80 {
		t.Errorf("ResolveVHost = %+v", got)
	}
	app.HealthChecks = 1
	s = catalog.Build(policy, []catalog.App{app})
	if st := s.Stats(); st.Tasks != 1 || st.LiveTasks != 0 {
		t.Errorf("with health checks: %+v", st)
	}
	if answer := s.Resolve("feature-py", "pywebserver.example.com"); answer.Kind != catalog.Held {
		t.Errorf("with health checks: %+v", answer)
	}
}
