// Command marathon-sim serves a simulated Marathon 1.4 master (REST API,
// /v2/events stream and the /_sim/ fault injection API) for tests, demos
// and benchmarks. With -docker it runs the tasks of Docker apps as real
// containers on the local Docker engine: a test and demo harness, not
// Mesos. See package marathonsim.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/docker/docker/client"

	"github.com/oakdns/oak/marathonsim"
)

// defaultListen is where marathon-sim serves unless told otherwise: the
// address oak-demo uses, and not CoreDNS's health port (8080).
const defaultListen = "127.0.0.1:18080"

func main() {
	if err := run(os.Args[1:], os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "marathon-sim:", err)
		os.Exit(1)
	}
}

// run parses args, serves until SIGINT/SIGTERM (or ctx ends, when given) and
// shuts down gracefully. ready, when not nil, receives the bound address.
func run(args []string, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("marathon-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultListen, "address to serve on (host:port); the default keeps clear of 8080, where CoreDNS's health plugin listens")
	appsFile := fs.String("apps", "", "start from this GET /v2/apps?embed=apps.tasks JSON body (tasks loaded as they are)")
	cidr := fs.String("task-cidr", "10.199.46.0/24", "fake range for task ipAddresses (data only, never contacted)")
	host := fs.String("host", "127.0.0.1", "agent host reported for every task")
	staging := fs.Duration("staging-delay", 20*time.Millisecond, "time a new task stays TASK_STAGING (0 = none)")
	health := fs.Duration("health-delay", 20*time.Millisecond, "time before a running task's first health result (0 = none)")
	backoff := fs.Duration("restart-backoff", 100*time.Millisecond, "delay before a failed task is replaced (0 = none)")
	killDelay := fs.Duration("kill-delay", 200*time.Millisecond, "time a killed task stays TASK_KILLING, still listed, before TASK_KILLED (0 = none)")
	checkInterval := fs.Duration("health-check-interval", 0,
		"period at which a task made unhealthy fails its next health check (0 = each app's intervalSeconds, negative = only on /_sim/task/unhealthy)")
	heartbeat := fs.Duration("heartbeat", 10*time.Second, "event stream heartbeat period (0 = none)")
	retry := fs.Duration("sse-retry", 0, `test only: send "retry: <ms>" on each stream's first frame (0 = never, as Marathon)`)
	user := fs.String("user", "", "require HTTP basic auth with this user (with -password)")
	password := fs.String("password", "", "password for -user")
	token := fs.String("token", "", `accept "Authorization: token=<token>" (DC/OS)`)
	planGroups := fs.String("plan-groups", marathonsim.PlanGroupsFull,
		`root groups in deployment plans: "full" (every app, as Marathon) or "affected" (only the deployed app; `+
			`a benchmark-only deviation that makes each deployment event O(1) on large clusters)`)
	docker := fs.Bool("docker", false, "run the tasks of Docker apps as real containers on the Docker engine that DOCKER_HOST (or the default socket) names: "+
		"a test and demo harness, not Mesos (see -h)")
	owner := fs.String("docker-owner", "marathon-sim", "with -docker: value of the "+marathonsim.OwnerLabel+
		" label on this simulator's containers; those left by an earlier run with the same owner are removed at start, all of them at exit")
	verbose := fs.Bool("v", false, "log every fault and stream at debug level")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: marathon-sim [flags]

Serves a simulated Marathon 1.4 master: /ping, /v2/apps, /v2/tasks,
/v2/deployments, /v2/events (SSE), /v2/info, /v2/leader, and the fault
injection API under /_sim/ (GET state; POST drop-streams, refuse-streams?on=,
fail-rest?n=&status=&ping=, drop-events?n=, delay?ms=,
task/healthy|unhealthy|kill?task=, reset).

With -docker, the tasks of Docker apps (container.type DOCKER with an
image) run as real containers: image, cmd/args, env (with MARATHON_APP_ID,
MESOS_TASK_ID...), labels, host volumes, and the Docker parameters net, ip,
dns, dns-search, dns-opt, hostname, label, env, add-host, cap-add,
cap-drop, user, workdir, volume, entrypoint. A task runs when its container
runs and reports the container's address; a container that exits fails
its task and a replacement starts. Killed tasks' containers are removed.
HTTP(S) and TCP health checks are probed for real; COMMAND checks are
simulated. This is a test and demo harness on one Docker engine: there is
no Mesos, no resource accounting, constraints are not enforced, and images
must exist locally (no pulls from a registry are attempted).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *planGroups != marathonsim.PlanGroupsFull && *planGroups != marathonsim.PlanGroupsAffected {
		return fmt.Errorf("-plan-groups: %q is neither %q nor %q", *planGroups, marathonsim.PlanGroupsFull, marathonsim.PlanGroupsAffected)
	}
	prefix, err := netip.ParsePrefix(*cidr)
	if err != nil {
		return fmt.Errorf("-task-cidr: %w", err)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	none := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1 // Options: negative means none
		}
		return d
	}
	var dockerMode *marathonsim.Docker
	if *docker {
		cli, err := dockerClient()
		if err != nil {
			return err
		}
		defer cli.Close()
		dockerMode = &marathonsim.Docker{Client: cli, Owner: *owner}
	}
	sim := marathonsim.New(marathonsim.Options{
		TaskCIDR: prefix, Host: *host, Docker: dockerMode,
		StagingDelay: none(*staging), HealthDelay: none(*health), RestartBackoff: none(*backoff),
		KillDelay: none(*killDelay), HealthCheckInterval: *checkInterval,
		Heartbeat: none(*heartbeat), SSERetry: *retry, PlanGroups: *planGroups,
		User: *user, Password: *password, Token: *token, Logger: logger,
	})
	defer sim.Close()
	if *appsFile != "" {
		body, err := os.ReadFile(*appsFile)
		if err != nil {
			return fmt.Errorf("-apps: %w", err)
		}
		if err := sim.LoadApps(body); err != nil {
			return fmt.Errorf("-apps %s: %w", *appsFile, err)
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("marathon-sim serving", "addr", ln.Addr().String(), "apps", len(sim.State().Apps), "docker", *docker)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("marathon-sim stopping")
	sim.Close() // ends event streams so that Shutdown need not wait for them
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	<-errc
	return nil
}

// dockerClient connects to the local engine and checks that it answers, so
// that -docker fails at start rather than at the first task.
func dockerClient() (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("-docker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("-docker: no Docker engine answers: %w", err)
	}
	cli.NegotiateAPIVersion(ctx)
	return cli, nil
}
