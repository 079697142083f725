package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/oakdns/oak/internal/poll"
	"github.com/oakdns/oak/internal/ports"
)

// server is one running CoreDNS under test.
type server struct {
	label string // "hosts", "marathon"
	proc  *child
	port  int
	pprof string // address of its pprof listener, "" when not profiling
}

// measurement is one measured dnsperf run against one server.
type measurement struct {
	server string // "hosts", "marathon", and each "+churn" (measured while Marathon churns)
	round  int    // 0 = the fixed-rate latency run
	rate   int    // dnsperf -Q of a latency run
	res    result
	cpu    time.Duration // server CPU time (user+sys) during the run
	wall   time.Duration
	churn  *churnResult
	// resyncs is the full lists the simulator answered during the run:
	// marathon's full resyncs.
	resyncs int
	// followCPU is the marathon server's CPU time during a run of another
	// server: what following Marathon costs it with no queries to answer
	// (on the CPU the measured server loads).
	followCPU time.Duration
}

// cpuShare is the share of one CPU the server got during the run.
func (m measurement) cpuShare() float64 { return m.cpu.Seconds() / m.wall.Seconds() }

// perCPU is completed queries per CPU second of the server: the throughput
// the server would reach on a CPU of its own, robust to other load on it.
func (m measurement) perCPU() float64 {
	if m.cpu <= 0 {
		return 0
	}
	return float64(m.res.completed) / m.cpu.Seconds()
}

func run(ctx context.Context, cfg config, t tools) error {
	dir, err := os.MkdirTemp("", "oak-benchdns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kids := &children{taskset: t.taskset}
	defer kids.stopAll()

	topo := newTopology()
	mix := topo.queryMix()
	files := map[string]string{
		"apps":    filepath.Join(dir, "apps.json"),
		"hosts":   filepath.Join(dir, "hosts"),
		"queries": filepath.Join(dir, "queries.txt"),
	}
	if err := topo.writeApps(files["apps"]); err != nil {
		return err
	}
	if err := topo.writeHosts(files["hosts"]); err != nil {
		return err
	}
	if err := writeQueries(files["queries"], mix); err != nil {
		return err
	}
	logf("generated %d apps in %d envs; client %s in %s; query mix: %d own-env + %d fallback names",
		len(topo.apps), numEnvs, topo.client, featureEnv(clientEnvIndex), len(topo.own), len(topo.parent))

	// The simulator shares the load CPU with dnsperf and the churn driver.
	simPort, err := ports.Free()
	if err != nil {
		return err
	}
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	sim, err := kids.start("marathon-sim", cfg.loadCPU, []string{"GOMAXPROCS=1"}, t.sim,
		"-listen", fmt.Sprintf("127.0.0.1:%d", simPort), "-apps", files["apps"],
		// Deployment plans with only the apps they touch: with Marathon's
		// full root groups a 10,000-app simulator manages ~20 PUTs/s. The
		// watcher reads only plan ids and steps.
		"-plan-groups", "affected")
	if err != nil {
		return err
	}
	if err := poll.Until(ctx, "marathon-sim", 30*time.Second, 50*time.Millisecond, func() error {
		if err := sim.exited(); err != nil {
			return err
		}
		resp, err := http.Get(simURL + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return err
	}

	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return err
		}
	}
	// Both servers get the pprof plugin (its own listener, nothing on the
	// query path), for CPU profiles and the heap figures.
	pprofAddrs := map[string]string{}
	for _, name := range []string{"hosts", "marathon"} {
		p, err := ports.Free()
		if err != nil {
			return err
		}
		pprofAddrs[name] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	corefiles := map[string]string{
		"hosts": fmt.Sprintf("%s {\n    bind 127.0.0.1\n%s    hosts %s\n}\n", zone, pprofLine(pprofAddrs["hosts"]), files["hosts"]),
		"marathon": fmt.Sprintf("%s {\n    bind 127.0.0.1\n%s    marathon {\n        endpoint %s\n        resync %s\n        default_env %s\n        fallback feature-* %s\n        env_from_client\n        ip_allow loopback\n    }\n}\n",
			zone, pprofLine(pprofAddrs["marathon"]), simURL, cfg.resync, defaultEnv, defaultEnv),
	}
	servers := map[string]*server{}
	for _, name := range []string{"hosts", "marathon"} {
		path := filepath.Join(dir, name+".Corefile")
		if err := os.WriteFile(path, []byte(corefiles[name]), 0o600); err != nil {
			return err
		}
		port, err := ports.Free()
		if err != nil {
			return err
		}
		proc, err := kids.start("coredns "+name, cfg.serverCPU, []string{"GOMAXPROCS=1"}, t.coredns,
			"-conf", path, "-dns.port", strconv.Itoa(port))
		if err != nil {
			return err
		}
		servers[name] = &server{label: name, proc: proc, port: port, pprof: pprofAddrs[name]}
	}
	syncStart := time.Now()
	for _, s := range servers {
		if err := waitAnswer(ctx, s, topo.client, topo.parent[0]); err != nil {
			return err
		}
	}
	logf("both servers answer (marathon's first full sync of %d apps within %s)", len(topo.apps), time.Since(syncStart).Round(time.Millisecond))
	firstMem, err := readMemory(ctx, servers, simURL)
	if err != nil {
		return err
	}
	if err := checkAnswers(ctx, servers, topo, mix, true); err != nil {
		return err
	}

	ld := load{
		dnsperf: t.dnsperf, taskset: t.taskset, cpu: cfg.loadCPU, server: "127.0.0.1",
		source: topo.client.String(), queries: files["queries"], clients: cfg.clients, outstanding: cfg.outstanding,
	}
	var runs []measurement
	measure := func(s *server, label string, round int, opt runOpts) (measurement, error) {
		l := ld
		l.port = s.port
		if opt.warmup > 0 {
			if _, err := l.run(ctx, opt.warmup); err != nil {
				return measurement{}, fmt.Errorf("%s warm-up: %w", label, err)
			}
		}
		l.rate, l.verbose = opt.rate, opt.rate > 0
		// With -profile: a CPU profile and the allocations over the same
		// window (GC time follows them), or an execution trace, which
		// shows what made queries wait in a latency run.
		var fetches []func() error
		fetch := func(from *server, kind, file string) {
			fetches = append(fetches, func() error {
				return fetchProfile(ctx, from.pprof, kind, opt.duration-time.Second, filepath.Join(cfg.profile, file))
			})
		}
		if cfg.profile != "" && opt.profile != "" {
			fetch(s, "profile", opt.profile)
			fetch(s, "allocs", strings.TrimSuffix(opt.profile, ".pprof")+".allocs.pprof")
		}
		if cfg.profile != "" && opt.trace != "" {
			fetch(s, "trace", opt.trace)
		}
		// The marathon server follows Marathon while hosts is measured.
		follower := servers["marathon"]
		if s == follower {
			follower = nil
		}
		if cfg.profile != "" && opt.followProfile != "" && follower != nil {
			fetch(follower, "profile", opt.followProfile)
		}
		profDone := make(chan error, len(fetches))
		for _, f := range fetches {
			go func() { profDone <- f() }()
		}
		cpu0, err := cpuTime(s.proc.Cmd.Process.Pid)
		if err != nil {
			return measurement{}, err
		}
		followCPU := func() (time.Duration, error) {
			if follower == nil {
				return 0, nil
			}
			return cpuTime(follower.proc.Cmd.Process.Pid)
		}
		follow0, err := followCPU()
		if err != nil {
			return measurement{}, err
		}
		lists0, err := fullLists(ctx, simURL)
		if err != nil {
			return measurement{}, err
		}
		start := time.Now()
		res, err := l.run(ctx, opt.duration)
		if err != nil {
			return measurement{}, fmt.Errorf("%s: %w", label, err)
		}
		wall := time.Since(start)
		cpu1, err := cpuTime(s.proc.Cmd.Process.Pid)
		if err != nil {
			return measurement{}, err
		}
		follow1, err := followCPU()
		if err != nil {
			return measurement{}, err
		}
		lists1, err := fullLists(ctx, simURL)
		if err != nil {
			return measurement{}, err
		}
		var profErr error
		for range fetches {
			profErr = errors.Join(profErr, <-profDone)
		}
		if profErr != nil {
			return measurement{}, fmt.Errorf("profile: %w", profErr)
		}
		if err := s.proc.exited(); err != nil {
			return measurement{}, err
		}
		m := measurement{server: label, round: round, rate: opt.rate, res: res, cpu: cpu1 - cpu0, wall: wall, resyncs: int(lists1 - lists0), followCPU: follow1 - follow0}
		logf("%-15s %s", label, m.summary())
		return m, nil
	}

	// idle measures rounds of both servers, hosts then marathon, labelled
	// with suffix; the first round of those before the churn is profiled.
	idle := func(suffix string, rounds int) error {
		for r := 1; r <= rounds; r++ {
			for _, name := range []string{"hosts", "marathon"} {
				opt := runOpts{warmup: cfg.warmup, duration: cfg.duration}
				if r == 1 && suffix == "" {
					opt.profile = name + "-idle.pprof"
				}
				m, err := measure(servers[name], name+suffix, r, opt)
				if err != nil {
					return err
				}
				runs = append(runs, m)
			}
		}
		return nil
	}
	if err := idle("", cfg.rounds); err != nil {
		return err
	}
	if cfg.latencyQPS > 0 {
		for _, name := range []string{"hosts", "marathon"} {
			m, err := measure(servers[name], name, 0, runOpts{duration: cfg.latencyRun, rate: cfg.latencyQPS, trace: name + "-latency.trace"})
			if err != nil {
				return err
			}
			runs = append(runs, m)
		}
	}
	// Memory after the idle runs, once marathon has made memResyncs full
	// resyncs since its first sync.
	if err := poll.Until(ctx, "marathon's resyncs", time.Duration(cfg.memResyncs+2)*cfg.resync+time.Minute, 100*time.Millisecond, func() error {
		n, err := fullLists(ctx, simURL)
		if err != nil || n >= firstMem.lists+int64(cfg.memResyncs) {
			return err
		}
		return fmt.Errorf("%d full lists so far", n)
	}); err != nil {
		return err
	}
	lastMem, err := readMemory(ctx, servers, simURL)
	if err != nil {
		return err
	}

	if cfg.churnRate > 0 {
		ms, err := measureChurn(ctx, cfg, simURL, topo, servers, mix, measure)
		if err != nil {
			return err
		}
		runs = append(runs, ms...)
		// Idle again, with the view the churn rewrote (measureChurn has
		// waited for marathon to settle).
		if err := idle(afterChurn, cfg.afterRounds); err != nil {
			return err
		}
	}

	rep := newReport(cfg, topo, runs, []memorySample{firstMem, lastMem})
	fmt.Print("\n" + rep.text())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(rep.markdown()), 0o644); err != nil {
			return err
		}
		logf("wrote %s", cfg.out)
	}
	return nil
}

// afterChurn labels the idle rounds measured once the churn has stopped.
const afterChurn = " after churn"

// runOpts shapes one measured dnsperf run.
type runOpts struct {
	warmup, duration time.Duration
	rate             int    // dnsperf -Q and -v (latency percentiles); 0 = as fast as possible
	profile          string // CPU profile file name, "" = none
	trace            string // execution trace file name, "" = none
	followProfile    string // CPU profile of the marathon server while another is measured, "" = none
}

// measureChurn measures the marathon server while the churn driver changes
// cfg.churnRate apps per second: a warm-up, the throughput run, then the
// fixed-rate latency run, all under churn. Afterwards it checks that the
// server caught up with the simulator.
func measureChurn(ctx context.Context, cfg config, simURL string, topo *topology, servers map[string]*server, mix []benchApp,
	measure func(*server, string, int, runOpts) (measurement, error)) ([]measurement, error) {
	client, err := newMarathonClient(simURL)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := churn{client: client, apps: topo.apps, op: cfg.churnOp, rate: cfg.churnRate, workers: cfg.workers}
	resc := make(chan churnResult, 1)
	go func() { resc <- ch.run(cctx) }()
	// hosts does not follow Marathon: measured under the same churn, it is
	// the control, what the simulator and the churn driver on the load CPU
	// cost any server's throughput.
	var runs []measurement
	var m measurement
	for round := 1; round <= cfg.churnRounds && err == nil; round++ {
		for _, name := range []string{"hosts", "marathon"} {
			opt := runOpts{duration: cfg.duration}
			if round == 1 {
				opt.warmup = cfg.warmup
				if name == "marathon" {
					opt.profile = "marathon-churn.pprof"
				} else {
					opt.followProfile = "marathon-follow.pprof"
				}
			}
			if m, err = measure(servers[name], name+"+churn", round, opt); err != nil {
				break
			}
			runs = append(runs, m)
		}
	}
	for _, name := range []string{"hosts", "marathon"} {
		if err != nil || cfg.latencyQPS == 0 {
			break
		}
		opt := runOpts{duration: cfg.latencyRun, rate: cfg.latencyQPS}
		if name == "marathon" {
			opt.trace = "marathon-churn-latency.trace"
		}
		if m, err = measure(servers[name], name+"+churn", 0, opt); err == nil {
			runs = append(runs, m)
		}
	}
	cancel()
	cr := <-resc
	if err != nil {
		return nil, err
	}
	for i := range runs {
		runs[i].churn = &cr
	}
	logf("churn (%s): %d changes done (%.0f/s), %d failed, %d skipped (simulator behind) of %d wanted",
		cfg.churnOp, cr.done, cr.rate(), cr.failed, cr.skipped, cr.wanted)
	if cr.firstErr != nil {
		logf("churn: first error: %v", cr.firstErr)
	}
	// The plugin must have followed the simulator: once the churn stops,
	// every sampled name answers as before.
	settled := time.Now()
	if err := poll.Until(ctx, "marathon to settle after the churn", 30*time.Second, 50*time.Millisecond, func() error {
		return checkAnswers(ctx, servers, topo, mix, false)
	}); err != nil {
		return nil, err
	}
	logf("marathon answers as before within %s after the churn stopped", time.Since(settled).Round(time.Millisecond))
	return runs, nil
}

func pprofLine(addr string) string {
	if addr == "" {
		return ""
	}
	return "    pprof " + addr + "\n"
}

// fetchProfile saves a profile of d from CoreDNS's pprof plugin: kind
// "profile" is CPU time, "allocs" the allocations made during d.
func fetchProfile(ctx context.Context, addr, kind string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("wrote %s profile %s", kind, path)
	return f.Close()
}

// cpuTime is the user+system CPU time of process pid (/proc/pid/stat).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (USER_HZ = 100).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

// query asks s for name A from source address from.
func query(s *server, from netip.Addr, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{
		Timeout: 2 * time.Second, LocalAddr: &net.UDPAddr{IP: from.AsSlice()},
	}}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", s.port))
	return r, err
}

// waitAnswer waits until s answers a's name with a's address for client
// (for marathon: after the first full sync; SERVFAIL before).
func waitAnswer(ctx context.Context, s *server, client netip.Addr, a benchApp) error {
	return poll.Until(ctx, "coredns "+s.label+" to answer "+a.Name, 60*time.Second, 50*time.Millisecond, func() error {
		if err := s.proc.exited(); err != nil {
			return err
		}
		r, err := query(s, client, a.Name, dns.TypeA)
		if err != nil {
			return err
		}
		return expectA(r, a)
	})
}

func expectA(r *dns.Msg, a benchApp) error {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return fmt.Errorf("%s: %s with %d answers", a.Name, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	rr, ok := r.Answer[0].(*dns.A)
	if !ok || rr.A.String() != a.IP.String() {
		return fmt.Errorf("%s: got %s, want %s", a.Name, r.Answer[0], a.IP)
	}
	return nil
}

// checkAnswers proves that both servers give the client the same answers for
// a sample of the query mix, and that the marathon server put the client in
// its feature env (TXT _env).
func checkAnswers(ctx context.Context, servers map[string]*server, topo *topology, mix []benchApp, verbose bool) error {
	step := max(1, len(mix)/500)
	n := 0
	for i := 0; i < len(mix); i += step {
		for _, s := range servers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r, err := query(s, topo.client, mix[i].Name, dns.TypeA)
			if err != nil {
				return fmt.Errorf("check %s: %w", s.label, err)
			}
			if err := expectA(r, mix[i]); err != nil {
				return fmt.Errorf("check %s: %w", s.label, err)
			}
			n++
		}
	}
	r, err := query(servers["marathon"], topo.client, "_env."+zone, dns.TypeTXT)
	if err != nil {
		return err
	}
	want := fmt.Sprintf(`"env=%s" "how=app"`, featureEnv(clientEnvIndex))
	if len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), want) {
		return fmt.Errorf("marathon _env TXT for %s: got %v, want %s", topo.client, r.Answer, want)
	}
	if !verbose {
		return nil
	}
	logf("checked %d answers: hosts and marathon agree; %s", n, strings.TrimSpace(strings.SplitN(r.Answer[0].String(), "TXT", 2)[1]))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
