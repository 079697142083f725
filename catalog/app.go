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

// app is one Marathon application as the catalog sees it: validated labels
// and the addresses derived from its tasks. It is immutable once built.
type app struct {
	id        string
	env       string
	names     []string
	vhosts    []string     // vhost keys (see vhostKey) of the HTTP label
	ports     []Port       // sorted
	backends  []netip.Addr // live backend addresses, sorted, deduped
	claimed   []netip.Addr // addresses that identify the app as a client (EnvOf), sorted, deduped
	tasks     int          // tasks in TASK_RUNNING
	liveTasks int          // running tasks that pass their health checks
}

// equal reports whether a and b hold the same data (TestAppEqual keeps it
// in step with the fields).
func (a *app) equal(b *app) bool {
	return a.id == b.id && a.env == b.env &&
		slices.Equal(a.names, b.names) && slices.Equal(a.vhosts, b.vhosts) && slices.Equal(a.ports, b.ports) &&
		slices.Equal(a.backends, b.backends) && slices.Equal(a.claimed, b.claimed) &&
		a.tasks == b.tasks && a.liveTasks == b.liveTasks
}

// newApp turns a Marathon application into an app, or says why it is left
// out. The application is read, never kept.
func newApp(p *Policy, a *App) (*app, *Rejection) {
	if a.ID == "" {
		return nil, &Rejection{Label: "id", Reason: "app has no id"}
	}
	labels, err := p.labels.Parse(a.Labels)
	if err != nil {
		var le *LabelError
		if !errors.As(err, &le) {
			le = &LabelError{Reason: err.Error()}
		}
		return nil, &Rejection{AppID: a.ID, Label: le.Label, Value: le.Value, Reason: le.Reason}
	}
	out := &app{
		id:    a.ID,
		env:   labels.Env,
		names: labels.Names,
		ports: labels.Ports,
	}
	if out.env == "" {
		out.env = p.defaultEnv
	}
	for _, vh := range labels.HTTP {
		out.vhosts = append(out.vhosts, vhostKey(vh))
	}
	if out.ports == nil {
		out.ports = derivedPorts(a)
	}
	if labels.IP.IsValid() {
		out.claimed = append(out.claimed, labels.IP)
	}

	healthChecked := a.HealthChecks > 0
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
		out.liveTasks++
		if labels.IP.IsValid() {
			continue
		}
		if len(taskIPs) > 0 {
			out.backends = append(out.backends, taskIPs...)
		} else if host, err := parseAddr(t.Host); err == nil {
			// Host networking: the agent's address is the backend. It is not a
			// claim for EnvOf, because every app on that agent shares it.
			out.backends = append(out.backends, host)
		}
	}
	if labels.IP.IsValid() && out.liveTasks > 0 {
		out.backends = []netip.Addr{labels.IP}
	}
	out.backends = sortAddrs(out.backends)
	out.claimed = sortAddrs(out.claimed)
	return out, nil
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

// derivedPorts reads an app's ports from its port specs. Unnamed ports, and
// names that are not one DNS label, get the name "port<index>"; ports out
// of range and unknown protocols are skipped; "udp,tcp" gives one Port per
// protocol.
func derivedPorts(a *App) []Port {
	var out []Port
	for i, spec := range a.Ports {
		if spec.Number < 1 || spec.Number > 65535 {
			continue
		}
		portName, err := parsePortName(spec.Name)
		if err != nil {
			portName = fmt.Sprintf("port%d", i)
		}
		protocol := spec.Protocol
		if protocol == "" {
			protocol = "tcp"
		}
		for proto := range strings.SplitSeq(protocol, ",") {
			if proto, err := parseProto(strings.TrimSpace(proto)); err == nil {
				out = append(out, Port{Name: portName, Number: uint16(spec.Number), Proto: proto})
			}
		}
	}
	slices.SortFunc(out, comparePort)
	return slices.Compact(out)
}

func sortAddrs(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// vhostKey is the key of a virtual host in the vhost index: host and port
// are distinct vhosts (Nginx may listen on several ports).
func vhostKey(vh VHost) string {
	return fmt.Sprintf("%s:%d", vh.Host, vh.Port)
}
