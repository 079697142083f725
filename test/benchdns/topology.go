package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Topology sizes: 10,000 apps with one name each in 100 envs. The default
// env (integration) holds the whole stack; each of the 99 feature envs holds
// only the few projects under test, as in the seed.
const (
	numApps        = 10000
	numEnvs        = 100
	appsPerFeature = 50
	numFeature     = numEnvs - 1
	numIntegration = numApps - numFeature*appsPerFeature // 5,050
	zone           = "example.com"
	defaultEnv     = "integration"
	clientEnvIndex = 1 // the feature env dnsperf's source address belongs to
)

// benchApp is one generated Marathon app.
type benchApp struct {
	ID   string
	Env  string // "" = integration (no OAK_ENV label)
	Name string
	IP   netip.Addr
}

// topology is the generated data set and the client's view of it.
type topology struct {
	apps   []benchApp
	client netip.Addr // dnsperf -a: the fixed IP of the client env's first app
	own    []benchApp // apps of the client's env: answered from its own env
	parent []benchApp // integration apps: answered by fallback for the client
}

func featureEnv(i int) string { return fmt.Sprintf("feature-%02d", i) }

// appIP gives every app its own fixed address. The first app of feature env
// i runs on 127.0.i.10, so that a process on loopback can send from it; all
// others are data only (10.x, never contacted). The Corefile allows
// loopback fixed IPs (ip_allow loopback) for that.
func appIP(global, env, k int) netip.Addr {
	if env > 0 && k == 0 {
		return netip.AddrFrom4([4]byte{127, 0, byte(env), 10})
	}
	return netip.AddrFrom4([4]byte{10, byte(1 + global/62500), byte(global / 250 % 250), byte(1 + global%250)})
}

// newTopology builds the 10,000 apps: n00000..n05049 in integration, then
// 50 per feature env. Every name is distinct, so a feature env's client sees
// its own 50 names from its env and the 5,050 integration names by fallback.
func newTopology() *topology {
	t := &topology{}
	global := 0
	add := func(env, envIndex, k int) benchApp {
		a := benchApp{Name: fmt.Sprintf("n%05d.svc.%s", global, zone), IP: appIP(global, envIndex, k)}
		if envIndex == 0 {
			a.ID = fmt.Sprintf("/integration/app%05d", global)
		} else {
			a.Env = featureEnv(envIndex)
			a.ID = fmt.Sprintf("/%s/app%05d", a.Env, global)
		}
		t.apps = append(t.apps, a)
		global++
		return a
	}
	for k := range numIntegration {
		t.parent = append(t.parent, add(0, 0, k))
	}
	for e := 1; e <= numFeature; e++ {
		for k := range appsPerFeature {
			a := add(0, e, k)
			if e == clientEnvIndex {
				t.own = append(t.own, a)
			}
		}
	}
	t.client = appIP(0, clientEnvIndex, 0)
	return t
}

// Marathon JSON, as GET /v2/apps?embed=apps.tasks returns it (the parts the
// simulator and the watcher read).
type (
	appJSON struct {
		ID        string            `json:"id"`
		Instances int               `json:"instances"`
		CPUs      float64           `json:"cpus"`
		Mem       float64           `json:"mem"`
		Labels    map[string]string `json:"labels"`
		Container containerJSON     `json:"container"`
		Version   string            `json:"version"`
		Tasks     []taskJSON        `json:"tasks"`
	}
	containerJSON struct {
		Type   string     `json:"type"`
		Docker dockerJSON `json:"docker"`
	}
	dockerJSON struct {
		Image      string      `json:"image"`
		Network    string      `json:"network"`
		Parameters []paramJSON `json:"parameters"`
	}
	paramJSON struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	taskJSON struct {
		ID          string   `json:"id"`
		AppID       string   `json:"appId"`
		Host        string   `json:"host"`
		SlaveID     string   `json:"slaveId"`
		State       string   `json:"state"`
		StagedAt    string   `json:"stagedAt"`
		StartedAt   string   `json:"startedAt"`
		Version     string   `json:"version"`
		Ports       []int    `json:"ports"`
		IPAddresses []ipJSON `json:"ipAddresses"`
	}
	ipJSON struct {
		IPAddress string `json:"ipAddress"`
		Protocol  string `json:"protocol"`
	}
)

const appVersion = "2024-01-01T00:00:00.000Z"

// appDefinition is the app as a deploy tool would PUT it, without tasks.
func (a benchApp) appDefinition() appJSON {
	labels := map[string]string{"OAK_NAMES": a.Name, "OAK_IP": a.IP.String()}
	if a.Env != "" {
		labels["OAK_ENV"] = a.Env
	}
	return appJSON{
		ID: a.ID, Instances: 1, CPUs: 0.1, Mem: 64, Labels: labels,
		Container: containerJSON{Type: "DOCKER", Docker: dockerJSON{
			Image: "oak" + a.ID, Network: "HOST",
			Parameters: []paramJSON{{Key: "net", Value: "oak-net"}, {Key: "ip", Value: a.IP.String()}},
		}},
		Version: appVersion,
	}
}

// writeApps writes the /v2/apps?embed=apps.tasks body: every app with one
// TASK_RUNNING task on its fixed IP.
func (t *topology) writeApps(path string) error {
	doc := struct {
		Apps []appJSON `json:"apps"`
	}{Apps: make([]appJSON, 0, len(t.apps))}
	for i, a := range t.apps {
		j := a.appDefinition()
		j.Tasks = []taskJSON{{
			ID:    fmt.Sprintf("%s.bench-%05d", strings.ReplaceAll(strings.TrimPrefix(a.ID, "/"), "/", "_"), i),
			AppID: a.ID, Host: "127.0.0.1", SlaveID: "bench-S1", State: "TASK_RUNNING",
			StagedAt: appVersion, StartedAt: appVersion, Version: appVersion, Ports: []int{},
			IPAddresses: []ipJSON{{IPAddress: a.IP.String(), Protocol: "IPv4"}},
		}}
		doc.Apps = append(doc.Apps, j)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o600)
}

// writeHosts writes the hosts(5) file of the stock plugin: the same 10,000
// names with the addresses the marathon plugin gives the client (all names
// are distinct, so that is each app's own address).
func (t *topology) writeHosts(path string) error {
	return writeLines(path, func(w *bufio.Writer) {
		for _, a := range t.apps {
			fmt.Fprintf(w, "%s %s\n", a.IP, a.Name)
		}
	})
}

// queryMix is the dnsperf input: own-env and fallback names alternate, so
// that half the answers come from the client's env and half from
// integration after its own env missed. It walks all 5,050 integration
// names and cycles through the 50 own names.
func (t *topology) queryMix() []benchApp {
	mix := make([]benchApp, 0, 2*len(t.parent))
	for i, p := range t.parent {
		mix = append(mix, t.own[i%len(t.own)], p)
	}
	return mix
}

// writeQueries writes the dnsperf data file for mix.
func writeQueries(path string, mix []benchApp) error {
	return writeLines(path, func(w *bufio.Writer) {
		for _, a := range mix {
			fmt.Fprintf(w, "%s A\n", a.Name)
		}
	})
}

func writeLines(path string, fill func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
