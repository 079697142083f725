package marathonsim

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// probeable reports whether docker mode runs checks for real: HTTP(S) and
// TCP checks, Marathon's or Mesos's. COMMAND checks stay simulated.
func (c healthCheck) probeable() bool {
	switch strings.ToUpper(c.protocol) {
	case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS", "TCP", "MESOS_TCP":
		return true
	}
	return false
}

// probeTarget is where check c of t's container is asked: the container's
// own address with the container's port when it has an address of its own,
// else the agent (Options.Host) with the task's host port.
func probeTarget(spec appSpec, t *task, c healthCheck, addr netip.Addr, host string) (string, error) {
	port := c.port
	if port == 0 {
		i := c.portIndex
		switch {
		case addr.IsValid() && spec.Container != nil && spec.Container.Docker != nil && i < len(spec.Container.Docker.PortMappings):
			port = spec.Container.Docker.PortMappings[i].ContainerPort
		case addr.IsValid() && i < len(spec.PortDefinitions) && spec.PortDefinitions[i].Port != 0:
			port = spec.PortDefinitions[i].Port
		case i < len(t.Ports):
			port = t.Ports[i]
		default:
			return "", fmt.Errorf("health check portIndex %d: the task has %d ports", i, len(t.Ports))
		}
	}
	target := host
	if addr.IsValid() {
		target = addr.String()
	}
	return net.JoinHostPort(target, strconv.Itoa(port)), nil
}

// probe runs check c once against target; nil means healthy. An HTTP check
// passes with a 2xx or 3xx answer, as Marathon's.
func probe(ctx context.Context, c healthCheck, target string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	protocol := strings.ToUpper(c.protocol)
	if strings.HasSuffix(protocol, "TCP") {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
		if err == nil {
			conn.Close()
		}
		return err
	}
	scheme := "http"
	if strings.HasSuffix(protocol, "HTTPS") {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+target+c.path, nil)
	if err != nil {
		return err
	}
	transport := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // as Marathon: no verification
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	return nil
}

// probeRound runs every check of t once and records the result as
// Marathon's health check actors do: all pass → alive; a failure counts
// only after the grace period or a first success, and enough of them kill
// t (failCheckLocked). It reports whether t is still worth probing.
func (s *Server) probeRound(t *task, checks []healthCheck, targets []string, started time.Time) bool {
	var failure error
	for i, c := range checks {
		if err := probe(s.ctx, c, targets[i]); err != nil {
			failure = err
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.removed || t.State != stateRunning {
		return false
	}
	everAlive := len(t.HealthCheckResults) > 0 && t.HealthCheckResults[0].FirstSuccess != nil
	switch {
	case failure == nil:
		if !t.ready(true) {
			s.setHealthLocked(t, true, len(checks))
		}
	case !everAlive && time.Since(started) < checks[0].grace:
		// Marathon ignores failures in the grace period before a first success.
	default:
		s.log.Info("health check failed", "task", t.ID, "err", failure)
		s.failCheckLocked(t, checks)
	}
	return !t.removed && t.State == stateRunning
}
