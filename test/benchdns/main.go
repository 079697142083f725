// Command benchdns is `make bench-dns`: dnsperf against bin/coredns with the
// marathon plugin (10,000 names in 100 envs, env chosen by the client's
// address) and, in the same run, against the same binary's stock hosts
// plugin serving the same names; then the marathon plugin again while the
// Marathon simulator changes 1,000 apps per second.
//
// The DNS server runs on one CPU (taskset, GOMAXPROCS=1); dnsperf, the
// simulator and this program (the churn driver) share the other. Everything
// stays on 127.0.0.0/8. Every child is stopped on exit and on Ctrl-C, and
// the temporary files are removed.
//
// Usage:
//
//	go build -o bin/ ./cmd/... && go run ./test/benchdns -bin bin [-out FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// pinnedEnv marks the re-executed benchmark that already runs under taskset.
const pinnedEnv = "OAK_BENCHDNS_PINNED"

// config is the command line.
type config struct {
	bin         string
	out         string
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	churnRounds int
	afterRounds int
	clients     int
	outstanding int
	churnRate   int
	churnOp     string
	latencyQPS  int
	workers     int
	serverCPU   string
	loadCPU     string
	profile     string
	dumpApps    string
	resync      time.Duration
	latencyRun  time.Duration
	memResyncs  int
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "benchdns:", err)
		os.Exit(2)
	}
	if cfg.dumpApps != "" {
		if err := newTopology().writeApps(cfg.dumpApps); err != nil {
			fmt.Fprintln(os.Stderr, "benchdns:", err)
			os.Exit(1)
		}
		return
	}
	tools, err := findTools(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdns:", err)
		os.Exit(1)
	}
	if os.Getenv(pinnedEnv) == "" {
		// Put this program (churn driver, result parsing) on the load CPU
		// with dnsperf and the simulator, away from the server's CPU.
		err := pinSelf(tools.taskset, cfg.loadCPU)
		fmt.Fprintln(os.Stderr, "benchdns: pin to load CPU:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, tools); err != nil {
		// Whether a signal ended the run, asked before stop, which
		// cancels ctx itself.
		interrupted := ctx.Err() != nil
		stop()
		if interrupted {
			fmt.Fprintln(os.Stderr, "benchdns: interrupted")
		} else {
			fmt.Fprintln(os.Stderr, "benchdns:", err)
		}
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("benchdns", flag.ContinueOnError)
	fs.StringVar(&cfg.bin, "bin", "bin", "directory holding coredns and marathon-sim (go build -o bin/ ./cmd/...)")
	fs.StringVar(&cfg.out, "out", "", "also write the results as a markdown section to this file")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of each measured dnsperf run (whole seconds)")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured dnsperf run before each measured one")
	fs.IntVar(&cfg.rounds, "rounds", 8, "idle rounds; each measures hosts then marathon, back to back")
	fs.IntVar(&cfg.clients, "clients", 4, "dnsperf -c")
	fs.IntVar(&cfg.outstanding, "outstanding", 200, "dnsperf -q")
	fs.IntVar(&cfg.churnRounds, "churn-rounds", 3, "throughput runs under churn (the churn ratio is their mean over the idle mean)")
	fs.IntVar(&cfg.afterRounds, "after-churn-rounds", 3, "idle rounds once the churn has stopped, as -rounds: what a view churn has rewritten costs the queries afterwards; 0 = none")
	fs.IntVar(&cfg.churnRate, "churn-rate", 1000, "app changes per second on the simulator during the churn run")
	fs.StringVar(&cfg.churnOp, "churn-op", churnKill, "churn operation: kill (kill an app's task; Marathon replaces it) or put (PUT a label change; restarts by deployment)")
	fs.IntVar(&cfg.latencyQPS, "latency-qps", 10000, "fixed rate (dnsperf -Q) of the latency-percentile run of each server; 0 = none")
	fs.IntVar(&cfg.workers, "churn-workers", 64, "concurrent PUTs of the churn driver")
	fs.StringVar(&cfg.serverCPU, "server-cpu", "0", "taskset CPU of the DNS servers")
	fs.StringVar(&cfg.loadCPU, "load-cpu", "1", "taskset CPU of dnsperf, the simulator and this program")
	fs.StringVar(&cfg.profile, "profile", "", "write CPU and allocation profiles of both servers (idle, round 1), of marathon under churn, and of marathon following the churn while hosts is measured (marathon-follow.pprof), and execution traces of the fixed-rate runs (both servers idle, marathon under churn), into this directory")
	fs.DurationVar(&cfg.resync, "resync", 5*time.Second, "the marathon plugin's full resync period (Corefile resync)")
	fs.DurationVar(&cfg.latencyRun, "latency-run", 12*time.Second, "length of each fixed-rate latency run (whole seconds); long enough for two resyncs")
	fs.IntVar(&cfg.memResyncs, "mem-resyncs", 20, "full resyncs after the first sync before both servers' heap and RSS are read")
	fs.StringVar(&cfg.dumpApps, "dump-apps", "", "only write the generated /v2/apps?embed=apps.tasks body to this file and exit")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.duration < time.Second || cfg.duration%time.Second != 0:
		return cfg, fmt.Errorf("-duration must be whole seconds, at least 1s")
	case cfg.latencyRun < time.Second || cfg.latencyRun%time.Second != 0:
		return cfg, fmt.Errorf("-latency-run must be whole seconds, at least 1s")
	case cfg.resync <= 0 || cfg.memResyncs < 0:
		return cfg, fmt.Errorf("-resync must be positive, -mem-resyncs not negative")
	case cfg.warmup < 0 || cfg.warmup%time.Second != 0:
		return cfg, fmt.Errorf("-warmup must be whole seconds")
	case cfg.rounds < 1 || cfg.churnRounds < 1 || cfg.clients < 1 || cfg.outstanding < 1 || cfg.churnRate < 0 || cfg.workers < 1:
		return cfg, fmt.Errorf("-rounds, -churn-rounds, -clients, -outstanding, -churn-workers must be positive")
	case cfg.afterRounds < 0:
		return cfg, fmt.Errorf("-after-churn-rounds must not be negative")
	case cfg.churnOp != churnKill && cfg.churnOp != churnPut:
		return cfg, fmt.Errorf("-churn-op must be %s or %s", churnKill, churnPut)
	case cfg.latencyQPS < 0:
		return cfg, fmt.Errorf("-latency-qps must not be negative")
	case cfg.serverCPU == cfg.loadCPU:
		return cfg, fmt.Errorf("-server-cpu and -load-cpu must differ")
	}
	return cfg, nil
}

// tools are the absolute paths of everything the benchmark runs.
type tools struct {
	dnsperf, taskset, coredns, sim string
}

func findTools(cfg config) (tools, error) {
	var t tools
	var missing []string
	look := func(name, pkg string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
		}
		return p
	}
	t.dnsperf = look("dnsperf", "dnsperf")
	t.taskset = look("taskset", "util-linux")
	if len(missing) > 0 {
		return t, fmt.Errorf("missing tools: %s", strings.Join(missing, ", "))
	}
	for _, b := range []struct {
		name string
		dst  *string
	}{{"coredns", &t.coredns}, {"marathon-sim", &t.sim}} {
		p, err := filepath.Abs(filepath.Join(cfg.bin, b.name))
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			return t, fmt.Errorf("%s not found in -bin %s (run go build -o %s/ ./cmd/...): %v", b.name, cfg.bin, cfg.bin, err)
		}
		*b.dst = p
	}
	if os.Getenv(pinnedEnv) == "" && runtime.NumCPU() < 2 {
		return t, fmt.Errorf("needs 2 CPUs (server and load apart), have %d", runtime.NumCPU())
	}
	return t, nil
}

// pinSelf re-executes this program under `taskset -c cpu`; it returns only
// on failure.
func pinSelf(taskset, cpu string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{taskset, "-c", cpu, self}, os.Args[1:]...)
	return syscall.Exec(taskset, argv, append(os.Environ(), pinnedEnv+"=1"))
}
