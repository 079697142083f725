package marathonsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// Labels the simulator puts on every container it starts, so that it finds
// its own containers again (and only those) to clean them up.
const (
	// OwnerLabel holds Docker.Owner.
	OwnerLabel = "com.oakdns.marathonsim.owner"
	// TaskLabel holds the Marathon task id.
	TaskLabel = "com.oakdns.marathonsim.task"
)

// Docker turns on docker mode: tasks of Docker apps (container.type DOCKER
// with an image) run as real containers on the engine Client talks to. It
// is a test and demo harness, not Mesos: no resources, no fetcher, no
// executor; one agent (Options.Host).
//
// Each task is `docker create` + `docker start` of the app's image with
// the app's cmd/args, env (plus what Marathon and Mesos set, such as
// MARATHON_APP_ID and MESOS_TASK_ID), labels, volumes, port mappings
// (BRIDGE network: published on Options.Host) and Docker parameters
// (see runParameters). The task becomes TASK_RUNNING once the container
// runs and reports the container's address in ipAddresses; when the
// container exits the task is TASK_FAILED and a replacement is launched,
// as Marathon does. A killed task stays TASK_KILLING until its container
// is removed, then is TASK_KILLED (Options.KillDelay does not apply), so
// that a replacement on the same fixed address never meets it. HTTP(S) and TCP
// health checks are probed for real (the container's address and port, or
// the agent's host port on the host network), every check interval or
// Options.HealthCheckInterval; COMMAND checks pass after
// Options.HealthDelay, as without Docker.
type Docker struct {
	// Client talks to the engine; the caller closes it after the Server.
	Client *dockerclient.Client
	// Owner is the value of OwnerLabel on this simulator's containers.
	// New removes every container with the same owner, left over by an
	// earlier run, and Close removes them all again. Simulators running
	// side by side need distinct owners. Default "marathon-sim".
	Owner string
}

// supportedParameters lists the `docker run` options (Docker parameters of
// an app, without the dashes) that docker mode applies.
var supportedParameters = []string{
	"add-host", "cap-add", "cap-drop", "dns", "dns-opt", "dns-option", "dns-search", "e", "entrypoint", "env",
	"h", "hostname", "ip", "label", "l", "net", "network", "u", "user", "v", "volume", "w", "workdir",
}

// containerPlan is everything `docker create` needs for one task, worked
// out from the app while the state lock is held.
type containerPlan struct {
	name     string
	config   *container.Config
	host     *container.HostConfig
	endpoint *network.NetworkingConfig
	network  string // the network whose address the task reports
}

// runsContainer reports whether tasks of s run as containers in docker mode.
func (s appSpec) runsContainer() bool {
	return s.Container != nil && s.Container.Docker != nil && s.Container.Docker.Image != "" &&
		(s.Container.Type == "" || strings.EqualFold(s.Container.Type, "DOCKER"))
}

// envName is the shape of label keys Marathon copies into
// MARATHON_APP_LABEL_<KEY> variables.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// planContainer works out t's container from a's definition, as Mesos's
// Docker containerizer runs a Marathon task. An error is a definition
// Docker would refuse; the task then fails with it.
func planContainer(a *app, t *task, owner, host string) (containerPlan, error) {
	spec, docker := a.spec, a.spec.Container.Docker
	env := map[string]string{}
	for k, v := range spec.Env {
		var s string
		if json.Unmarshal(v, &s) == nil {
			env[k] = s
		}
	}
	labels, labelEnv := map[string]string{}, map[string]string{}
	var labelKeys []string
	for k, v := range spec.Labels {
		labels[k] = v
		if envName.MatchString(k) && len(v) <= 512 {
			labelEnv["MARATHON_APP_LABEL_"+strings.ToUpper(k)] = v
			labelKeys = append(labelKeys, strings.ToUpper(k))
		}
	}
	cfg := &container.Config{Image: docker.Image, Labels: labels}
	hc := &container.HostConfig{Privileged: docker.Privileged}
	switch strings.ToUpper(docker.Network) {
	case "HOST":
		hc.NetworkMode = "host"
	case "USER":
		if spec.IPAddress == nil || spec.IPAddress.NetworkName == "" {
			return containerPlan{}, errors.New("network USER needs ipAddress.networkName")
		}
		hc.NetworkMode = container.NetworkMode(spec.IPAddress.NetworkName)
	case "NONE":
		hc.NetworkMode = "none"
	default:
		hc.NetworkMode = "bridge"
	}
	switch {
	case spec.Cmd != nil && *spec.Cmd != "":
		cfg.Entrypoint = []string{"/bin/sh", "-c"} // Mesos runs cmd through a shell
		cfg.Cmd = []string{*spec.Cmd}
	case len(spec.Args) > 0:
		cfg.Cmd = spec.Args
	}
	for _, v := range a.spec.Container.Volumes {
		if v.HostPath == "" || v.ContainerPath == "" {
			return containerPlan{}, fmt.Errorf("volume %q: only host volumes (hostPath) run here", v.ContainerPath)
		}
		bind := v.HostPath + ":" + v.ContainerPath
		if strings.EqualFold(v.Mode, "RO") {
			bind += ":ro"
		}
		hc.Binds = append(hc.Binds, bind)
	}
	var fixedIP string
	for _, p := range docker.Parameters {
		if err := applyParameter(cfg, hc, env, labels, &fixedIP, p); err != nil {
			return containerPlan{}, err
		}
	}
	if hc.NetworkMode == "bridge" && len(docker.PortMappings) > 0 {
		published, bindings := nat.PortSet{}, nat.PortMap{}
		for i, m := range docker.PortMappings {
			if i >= len(t.Ports) || m.ContainerPort == 0 {
				continue
			}
			port := nat.Port(strconv.Itoa(m.ContainerPort) + "/tcp")
			published[port] = struct{}{}
			bindings[port] = append(bindings[port], nat.PortBinding{HostIP: host, HostPort: strconv.Itoa(t.Ports[i])})
		}
		cfg.ExposedPorts, hc.PortBindings = published, bindings
	}
	// What Marathon and Mesos set last, so that neither the app's env nor
	// its parameters pass it for another app or task.
	maps.Copy(env, labelEnv)
	sort.Strings(labelKeys)
	env["MARATHON_APP_LABELS"] = strings.Join(labelKeys, " ")
	env["MARATHON_APP_ID"] = a.id
	env["MARATHON_APP_VERSION"] = t.Version
	env["MARATHON_APP_DOCKER_IMAGE"] = docker.Image
	env["MESOS_TASK_ID"] = t.ID
	env["HOST"] = host
	var portNames []string
	for i, p := range t.Ports {
		env["PORT"+strconv.Itoa(i)] = strconv.Itoa(p)
		portNames = append(portNames, strconv.Itoa(p))
	}
	if len(t.Ports) > 0 {
		env["PORT"] = env["PORT0"]
		env["PORTS"] = strings.Join(portNames, ",")
	}

	for k, v := range env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	sort.Strings(cfg.Env)
	// Ours last, so that an app cannot pass for another owner's.
	labels[OwnerLabel], labels[TaskLabel] = owner, t.ID

	plan := containerPlan{name: "mesos-" + t.ID, config: cfg, host: hc}
	if mode := hc.NetworkMode; mode.IsUserDefined() {
		plan.network = string(mode)
		endpoint := &network.EndpointSettings{}
		if fixedIP != "" {
			endpoint.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: fixedIP}
		}
		plan.endpoint = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{plan.network: endpoint}}
	} else if mode.IsBridge() {
		plan.network = "bridge"
	}
	if fixedIP != "" && plan.endpoint == nil {
		return containerPlan{}, fmt.Errorf("parameter ip=%s: a fixed address needs a user-defined network (parameter net)", fixedIP)
	}
	return plan, nil
}

// applyParameter applies one Docker parameter (`docker run --key value`).
func applyParameter(cfg *container.Config, hc *container.HostConfig, env, labels map[string]string, fixedIP *string, p dockerParam) error {
	v := p.Value
	keyValue := func() (string, string, error) {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return "", "", fmt.Errorf("parameter %s=%q: want KEY=VALUE", p.Key, v)
		}
		return k, val, nil
	}
	switch p.Key {
	case "net", "network":
		hc.NetworkMode = container.NetworkMode(v)
	case "ip":
		addr, err := netip.ParseAddr(v)
		if err != nil || !addr.Is4() {
			return fmt.Errorf("parameter ip=%q: not an IPv4 address", v)
		}
		*fixedIP = addr.String()
	case "dns":
		hc.DNS = append(hc.DNS, v)
	case "dns-search":
		hc.DNSSearch = append(hc.DNSSearch, v)
	case "dns-opt", "dns-option":
		hc.DNSOptions = append(hc.DNSOptions, v)
	case "hostname", "h":
		cfg.Hostname = v
	case "label", "l":
		k, val, err := keyValue()
		if err != nil {
			return err
		}
		labels[k] = val
	case "env", "e":
		k, val, err := keyValue()
		if err != nil {
			return err
		}
		env[k] = val
	case "add-host":
		hc.ExtraHosts = append(hc.ExtraHosts, v)
	case "cap-add":
		hc.CapAdd = append(hc.CapAdd, v)
	case "cap-drop":
		hc.CapDrop = append(hc.CapDrop, v)
	case "user", "u":
		cfg.User = v
	case "workdir", "w":
		cfg.WorkingDir = v
	case "volume", "v":
		hc.Binds = append(hc.Binds, v)
	case "entrypoint":
		cfg.Entrypoint = []string{v}
	default:
		return fmt.Errorf("docker parameter %q is not supported by marathon-sim's docker mode (supported: %s)",
			p.Key, strings.Join(supportedParameters, ", "))
	}
	return nil
}

// dockerRuntime runs containers for a Server.
type dockerRuntime struct {
	cli   *dockerclient.Client
	owner string
}

func newDockerRuntime(d *Docker) *dockerRuntime {
	owner := d.Owner
	if owner == "" {
		owner = "marathon-sim"
	}
	return &dockerRuntime{cli: d.Client, owner: owner}
}

// started is a running container.
type started struct {
	id     string
	addr   netip.Addr       // on the plan's network; invalid when it has none
	exited <-chan exitState // receives once, when the container stops
}

type exitState struct {
	code int64
	err  error
}

// start creates and starts plan's container. On error nothing is left.
func (d *dockerRuntime) start(ctx context.Context, plan containerPlan) (started, error) {
	created, err := d.cli.ContainerCreate(ctx, plan.config, plan.host, plan.endpoint, nil, plan.name)
	if err != nil {
		return started{}, fmt.Errorf("docker create: %w", err)
	}
	fail := func(err error) (started, error) {
		d.remove(created.ID)
		return started{}, err
	}
	// Waiting for the next exit before the start cannot miss a quick one.
	waitCh, errCh := d.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	exited := make(chan exitState, 1)
	go func() {
		select {
		case r := <-waitCh:
			var err error
			if r.Error != nil {
				err = errors.New(r.Error.Message)
			}
			exited <- exitState{code: r.StatusCode, err: err}
		case err := <-errCh:
			exited <- exitState{code: -1, err: err}
		}
	}()
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fail(fmt.Errorf("docker start: %w", err))
	}
	info, err := d.cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		return fail(fmt.Errorf("docker inspect: %w", err))
	}
	s := started{id: created.ID, exited: exited}
	if info.NetworkSettings != nil {
		if ep := info.NetworkSettings.Networks[plan.network]; ep != nil {
			s.addr, _ = netip.ParseAddr(ep.IPAddress)
		}
	}
	return s, nil
}

// remove kills and removes a container; one already gone is fine.
func (d *dockerRuntime) remove(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// removeAll removes every container of this owner, running or not.
func (d *dockerRuntime) removeAll() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", OwnerLabel+"="+d.owner))})
	if err != nil {
		return 0, fmt.Errorf("list containers of owner %s: %w", d.owner, err)
	}
	var errs []error
	for _, c := range list {
		errs = append(errs, d.remove(c.ID))
	}
	return len(list), errors.Join(errs...)
}

// runContainer is runTask in docker mode: it starts t's container, makes
// t TASK_RUNNING with the container's address, and fails t when the
// container exits; the container is removed when t ends either way.
func (s *Server) runContainer(t *task, plan containerPlan, spec appSpec) {
	c, err := s.docker.start(s.ctx, plan)
	s.mu.Lock()
	if err != nil {
		s.notStartedLocked(t, err)
		s.mu.Unlock()
		return
	}
	defer func() {
		if err := s.docker.remove(c.id); err != nil {
			s.log.Warn("removing container", "task", t.ID, "container", c.id, "err", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !t.removed && t.State == stateKilling {
			s.killLocked(t, stateKilled, "")
		}
	}()
	if t.removed || t.State != stateStaging {
		s.mu.Unlock()
		return // killed while it started
	}
	t.State = stateRunning
	t.StartedAt = timestamp(time.Now())
	if c.addr.IsValid() {
		t.IPAddresses = []ipAddress{{IPAddress: c.addr.String(), Protocol: protocolOf(c.addr.String())}}
	}
	s.emitLocked("status_update_event", statusUpdate(t, ""))
	s.emitLocked("instance_changed_event", instanceChanged(t, "Running"))
	s.notifyLocked()
	s.mu.Unlock()

	// Health checks that can be probed are; others (COMMAND) pass after
	// HealthDelay, as without Docker.
	checks := spec.healthChecks()
	targets, probed := s.probeTargets(spec, t, checks, c.addr)
	var healthDue, probeDue <-chan time.Time
	if len(checks) > 0 && !probed {
		timer := time.NewTimer(s.opts.HealthDelay)
		defer timer.Stop()
		healthDue = timer.C
	}
	var probeTimer *time.Timer
	if probed {
		probeTimer = time.NewTimer(0)
		defer probeTimer.Stop()
		probeDue = probeTimer.C
	}
	started := time.Now()
	for {
		select {
		case <-healthDue:
			healthDue = nil
			s.mu.Lock()
			if !t.removed && t.State == stateRunning && len(t.HealthCheckResults) == 0 {
				s.setHealthLocked(t, true, len(checks))
			}
			s.mu.Unlock()
		case <-probeDue:
			if !s.probeRound(t, checks, targets, started) {
				probeDue = nil // killed for it: the container goes below
				continue
			}
			period := s.opts.HealthCheckInterval
			if period <= 0 {
				period = checks[0].interval
			}
			probeTimer.Reset(period)
		case exit := <-c.exited:
			s.mu.Lock()
			if !t.removed && t.State != stateKilling {
				msg := fmt.Sprintf("Docker container exited with status %d", exit.code)
				if exit.err != nil {
					msg = "Docker container lost: " + exit.err.Error()
				}
				s.failLocked(t, msg)
			}
			s.mu.Unlock()
			return
		case <-t.stop:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// notStartedLocked ends t, whose container could not start: TASK_FAILED
// with Docker's reason, or TASK_KILLED when it was killed meanwhile.
// s.mu must be held.
func (s *Server) notStartedLocked(t *task, err error) {
	switch {
	case t.removed:
	case t.State == stateKilling:
		s.killLocked(t, stateKilled, "")
	default:
		s.log.Info("task failed to start", "task", t.ID, "err", err)
		s.failLocked(t, err.Error())
	}
}

// probeTargets says where each of checks is probed, and whether they are:
// all must be probeable, and Options.HealthCheckInterval not negative.
func (s *Server) probeTargets(spec appSpec, t *task, checks []healthCheck, addr netip.Addr) ([]string, bool) {
	if len(checks) == 0 || s.opts.HealthCheckInterval < 0 {
		return nil, false
	}
	var targets []string
	for _, c := range checks {
		if !c.probeable() {
			return nil, false
		}
		target, err := probeTarget(spec, t, c, addr, s.opts.Host)
		if err != nil {
			s.log.Warn("health check not probed", "task", t.ID, "err", err)
			return nil, false
		}
		targets = append(targets, target)
	}
	return targets, true
}

// stopContainerLocked asks t's container, if any, to go. s.mu must be held.
func stopContainerLocked(t *task) {
	if t.stop != nil {
		select {
		case <-t.stop:
		default:
			close(t.stop)
		}
	}
}
