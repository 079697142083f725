package catalog

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// taskRunning is the Marathon task state of a started task.
const taskRunning = "TASK_RUNNING"

// defaultHTTPPort is the backend port of an OAK_HTTP host without a port.
const defaultHTTPPort = 80

// app is one Marathon application as the catalog sees it: validated labels
// and the addresses derived from its tasks. It is immutable once built.
type app struct {
	id       string
	env      string
	names    []string
	vhosts   []appVHost   // OAK_HTTP hosts with their backends, sorted by host
	backends []Backend    // live backends with their named ports, sorted by address
	claimed  []netip.Addr // addresses that identify the app as a client (EnvOf), sorted, deduped
	fixed    netip.Addr   // OAK_IP; the zero Addr when unset
	tasks    int          // tasks in TASK_RUNNING
	live     int          // running tasks that pass their health checks

	// Room for the usual single name, backend, port and claimed address,
	// which the slices above then point into: fewer objects for the
	// collector to mark (see owner).
	oneName    [1]string
	oneBackend [1]Backend
	onePort    [1]Port // the backends' Ports when the app declares one port
	oneClaimed [1]netip.Addr
}

// appVHost is one OAK_HTTP host of an app and the live endpoints that
// serve it, each address with the one port it serves HTTP on.
type appVHost struct {
	host     string
	backends []Backend
}

// Backend is one live address of a service and the ports served there.
// For a DNS name they are the app's named ports; for a virtual host, the
// HTTP port(s) the address serves that host on.
type Backend struct {
	Addr  netip.Addr
	Ports []Port // sorted, no duplicates; shared between backends and services: never written
}

// newApp turns a Marathon application into an app, or says why it is left
// out. The application is read, never kept.
func newApp(p *Policy, a *App) (*app, *Rejection) {
	labels, rejection := p.accept(a)
	if rejection != nil {
		return nil, rejection
	}
	out := &app{id: a.ID, env: labels.Env, names: labels.Names, fixed: labels.IP}
	if out.env == "" {
		out.env = p.defaultEnv
	}
	declared := labels.Ports
	if declared == nil {
		declared = derivedPorts(a)
	}
	if len(declared) == 1 {
		out.onePort[0] = declared[0]
		declared = out.onePort[:]
	}

	healthChecked := a.HealthChecks > 0
	var fixedLive bool
	for i := range a.Tasks {
		t := &a.Tasks[i]
		if t.State != taskRunning {
			continue
		}
		out.tasks++
		taskIPs := taskAddrs(t)
		out.claimed = append(out.claimed, taskIPs...)
		if healthChecked && !healthy(t) {
			continue
		}
		out.live++
		switch {
		case labels.IP.IsValid():
			fixedLive = true
		case len(taskIPs) > 0:
			for _, ip := range taskIPs {
				out.addBackend(ip, declared, labels.HTTP, nil)
			}
		default:
			// Host networking: the agent's address is the backend, on the
			// host ports Marathon gave this task. It is not a claim for
			// EnvOf, because every app on that agent shares it.
			if host, err := parseAddr(t.Host); err == nil {
				out.addBackend(host, hostPorts(a, t, labels.Ports, declared), labels.HTTP, hostPortOf(a, t))
			}
		}
	}
	if labels.IP.IsValid() && out.tasks > 0 {
		// A claim classifies clients while the app runs a task: a container
		// starting up asks for names before its health checks pass.
		out.claimed = append(out.claimed, labels.IP)
	}
	if fixedLive {
		out.addBackend(labels.IP, declared, labels.HTTP, nil)
	}
	out.backends = mergeBackends(out.backends)
	for i := range out.vhosts {
		out.vhosts[i].backends = mergeBackends(out.vhosts[i].backends)
	}
	for _, vh := range labels.HTTP {
		if !slices.ContainsFunc(out.vhosts, func(v appVHost) bool { return v.host == vh.Host }) {
			out.vhosts = append(out.vhosts, appVHost{host: vh.Host}) // published, nothing live
		}
	}
	slices.SortFunc(out.vhosts, func(x, y appVHost) int { return strings.Compare(x.host, y.host) })
	out.claimed = sortAddrs(out.claimed)
	if len(out.names) == 1 {
		out.oneName[0] = out.names[0]
		out.names = out.oneName[:]
	}
	if len(out.backends) == 1 {
		out.oneBackend[0] = out.backends[0]
		out.backends = out.oneBackend[:]
	}
	if len(out.claimed) == 1 {
		out.oneClaimed[0] = out.claimed[0]
		out.claimed = out.oneClaimed[:]
	}
	return out, nil
}

// adopt makes a, a new version of old, hold old's strings where they are
// equal. The tables keep the strings of the version that first put a key
// (a name, an ancestor of it, an app id in a name's claims), so a new
// version's own strings would be objects more for the collector to mark,
// each version's, for as long as the app runs (BenchmarkLiveHeap's
// after-kills).
func (a *app) adopt(old *app) {
	a.id = old.id
	for i, name := range a.names {
		if j, ok := slices.BinarySearch(old.names, name); ok {
			a.names[i] = old.names[j]
		}
	}
	for i := range a.vhosts {
		j, ok := slices.BinarySearchFunc(old.vhosts, a.vhosts[i].host, func(v appVHost, host string) int { return strings.Compare(v.host, host) })
		if ok {
			a.vhosts[i].host = old.vhosts[j].host
		}
	}
	// The ports' names: the declared ports, which its backends share (a's
	// are its own until it is published).
	oldPorts := old.onePort[:]
	if len(old.backends) > 0 {
		oldPorts = old.backends[0].Ports
	}
	adoptPort := func(p *Port) {
		if k := slices.IndexFunc(oldPorts, func(o Port) bool { return o.Name == p.Name }); k >= 0 {
			p.Name = oldPorts[k].Name
		}
	}
	adoptPort(&a.onePort[0])
	for i := range a.backends {
		for j := range a.backends[i].Ports {
			adoptPort(&a.backends[i].Ports[j])
		}
	}
}

// Check returns why a snapshot would leave a out (the Rejection that
// Snapshot.Rejected would list for it), or nil when a is accepted. It is
// the catalog's own decision, for tools that check an app before Marathon
// has it: nginxctl's deploy refuses an app the DNS would not serve.
func (p *Policy) Check(a *App) *Rejection {
	_, rejection := p.accept(a)
	return rejection
}

// accept validates what decides whether a is served: its id, its labels,
// and its fixed address against the Docker ip parameter and the policy.
func (p *Policy) accept(a *App) (AppLabels, *Rejection) {
	if a.ID == "" {
		return AppLabels{}, &Rejection{Label: "id", Reason: "app has no id"}
	}
	labels, err := p.labels.Parse(a.Labels)
	if err == nil && labels.IP.IsValid() {
		err = p.checkFixedIP(labels.IP, a.DockerIP)
	}
	if err != nil {
		var le *LabelError
		if !errors.As(err, &le) {
			le = p.labels.labelError(labelIP, labels.IP.String(), err)
		}
		return AppLabels{}, &Rejection{AppID: a.ID, Label: le.Label, Value: le.Value, Reason: le.Reason, Addr: declaredAddr(p, a)}
	}
	return labels, nil
}

// declaredAddr is the fixed address a rejected app declares, read loosely:
// its OAK_IP, else its Docker ip parameter, when it parses (the two must
// agree). Whatever its labels, the app may run on it, so the IP pool still
// counts it.
func declaredAddr(p *Policy, a *App) netip.Addr {
	label, param := strings.TrimSpace(a.Labels[p.labels.key(labelIP)]), strings.TrimSpace(a.DockerIP)
	if label != "" && param != "" && label != param {
		return netip.Addr{}
	}
	if label == "" {
		label = param
	}
	addr, err := netip.ParseAddr(label)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// addBackend records addr as a live backend with ports, and as an endpoint
// of each OAK_HTTP host on that host's port, translated by hostPort when
// the address is an agent's (nil: the port as written).
func (out *app) addBackend(addr netip.Addr, ports []Port, http []VHost, hostPort func(uint16) uint16) {
	out.backends = append(out.backends, Backend{Addr: addr, Ports: ports})
	for _, vh := range http {
		port := vh.Port
		if port == 0 {
			port = defaultHTTPPort
		}
		if hostPort != nil {
			port = hostPort(port)
		}
		i := slices.IndexFunc(out.vhosts, func(v appVHost) bool { return v.host == vh.Host })
		if i < 0 {
			i = len(out.vhosts)
			out.vhosts = append(out.vhosts, appVHost{host: vh.Host})
		}
		out.vhosts[i].backends = append(out.vhosts[i].backends,
			Backend{Addr: addr, Ports: []Port{{Name: "http", Number: port, Proto: "tcp"}}})
	}
}

// mergeBackends sorts backends by address and merges the ports of equal
// addresses.
func mergeBackends(backends []Backend) []Backend {
	slices.SortStableFunc(backends, func(x, y Backend) int { return x.Addr.Compare(y.Addr) })
	out := backends[:0]
	for _, b := range backends {
		if n := len(out); n > 0 && out[n-1].Addr == b.Addr {
			out[n-1].Ports = mergePorts(out[n-1].Ports, b.Ports)
			continue
		}
		out = append(out, b) // Ports are never written once made: shared, not copied
	}
	return slices.Clip(out)
}

func mergePorts(a, b []Port) []Port {
	out := append(slices.Clone(a), b...)
	slices.SortFunc(out, comparePort)
	return slices.Compact(out)
}

// hostPorts returns the ports a host-networked task serves: its own host
// ports, named after the app's port specs by index. An OAK_PORTS label
// states the ports as they are and wins.
func hostPorts(a *App, t *Task, labelled, declared []Port) []Port {
	if labelled != nil || len(t.Ports) == 0 {
		return declared
	}
	var out []Port
	for i, number := range t.Ports {
		if number < 1 || number > 65535 {
			continue
		}
		spec := PortSpec{Number: number}
		if i < len(a.Ports) {
			spec.Name, spec.Protocol = a.Ports[i].Name, a.Ports[i].Protocol
		}
		out = append(out, specPorts(i, spec)...)
	}
	slices.SortFunc(out, comparePort)
	return slices.Compact(out)
}

// hostPortOf maps a container port of the app to the host port Marathon
// gave task t for it (by index of the app's port specs); a port the app
// does not declare is taken as it is.
func hostPortOf(a *App, t *Task) func(uint16) uint16 {
	return func(port uint16) uint16 {
		for i, spec := range a.Ports {
			if spec.Number == int(port) && i < len(t.Ports) && t.Ports[i] >= 1 && t.Ports[i] <= 65535 {
				return uint16(t.Ports[i])
			}
		}
		return port
	}
}

// healthy reports whether every health check result of t is alive, with at
// least one result: a task whose checks have not yet reported is not live.
func healthy(t *Task) bool {
	if len(t.Health) == 0 {
		return false
	}
	for _, alive := range t.Health {
		if !alive {
			return false
		}
	}
	return true
}

// taskAddrs returns the valid addresses in t.IPs; invalid ones are
// skipped, as Marathon data is not ours to reject.
func taskAddrs(t *Task) []netip.Addr {
	var out []netip.Addr
	for _, ip := range t.IPs {
		if a, err := parseAddr(ip); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// derivedPorts reads an app's ports from its port specs.
func derivedPorts(a *App) []Port {
	var out []Port
	for i, spec := range a.Ports {
		out = append(out, specPorts(i, spec)...)
	}
	slices.SortFunc(out, comparePort)
	return slices.Compact(out)
}

// specPorts turns the port spec at index i into Ports. Unnamed ports, and
// names that are not one DNS label, get the name "port<index>"; ports out
// of range and unknown protocols are skipped; "udp,tcp" gives one Port per
// protocol.
func specPorts(i int, spec PortSpec) []Port {
	if spec.Number < 1 || spec.Number > 65535 {
		return nil
	}
	portName, err := parsePortName(spec.Name)
	if err != nil {
		portName = fmt.Sprintf("port%d", i)
	}
	protocol := spec.Protocol
	if protocol == "" {
		protocol = "tcp"
	}
	var out []Port
	for proto := range strings.SplitSeq(protocol, ",") {
		if proto, err := parseProto(strings.TrimSpace(proto)); err == nil {
			out = append(out, Port{Name: portName, Number: uint16(spec.Number), Proto: proto})
		}
	}
	return out
}

func sortAddrs(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}
