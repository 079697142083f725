// Command nginxctl publishes the virtual hosts of Marathon apps (OAK_HTTP)
// through Nginx, per environment, in safe batches, and serves its state
// over HTTP. See package nginxctl and nginxctl/README.md.
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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/nginxctl"
	"github.com/oakdns/oak/watcher"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "nginxctl:", err)
		os.Exit(1)
	}
}

// run dispatches on the first argument: a subcommand, or the controller's
// flags.
func run(args []string, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "network":
			return errors.New("network: the IP pool's commands are not built yet")
		default:
			return fmt.Errorf("unknown command %q (want flags, or one of: network)", args[0])
		}
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg)
}

// config is the parsed command line.
type config struct {
	endpoints []string // Marathon masters; empty when file is set
	file      string   // apps dump, for offline use
	resync    time.Duration
	policy    catalog.PolicyConfig

	listen      string
	nginx       string
	nginxDir    string
	nginxStart  bool
	workers     int
	render      nginxctl.RenderOptions
	domains     nginxctl.Domains
	waitMin     time.Duration
	waitMax     time.Duration
	staleAfter  time.Duration
	verifyAfter time.Duration
	verbose     bool
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("nginxctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var fallback, envCIDR listFlag
	marathonURLs := fs.String("marathon", "", "Marathon masters, `URL[,URL]` (http(s)://host:port), or file:///path/apps.json for an apps dump")
	corefile := fs.String("corefile", "", "take the Marathon endpoint and the policy from the marathon block of this Corefile (not supported yet)")
	fs.DurationVar(&cfg.resync, "resync", watcher.DefaultResync, "period of the full resync with Marathon")
	fs.StringVar(&cfg.policy.LabelPrefix, "label-prefix", "OAK_", "prefix of the oak labels on Marathon apps")
	fs.StringVar(&cfg.policy.DefaultEnv, "default-env", "integration", "env of apps and clients nobody placed elsewhere")
	fs.Var(&fallback, "fallback", "`PATTERN=PARENT`: envs matching the glob fall back to PARENT (repeatable; first match wins)")
	fs.Var(&envCIDR, "env-cidr", "`CIDR=ENV`: clients in CIDR belong to ENV unless an app claims their address (repeatable)")
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8090", "`ADDR` of nginxctl's HTTP API (/healthz, /metrics, /v1/...)")
	fs.StringVar(&cfg.nginx, "nginx", "nginx", "the nginx executable")
	fs.StringVar(&cfg.nginxDir, "nginx-dir", "", "`DIR` nginxctl owns: Nginx's prefix, main config, rendered routes, pid, logs (required)")
	fs.BoolVar(&cfg.nginxStart, "nginx-start", false, "start and supervise Nginx; without it, reload the Nginx whose pid file is in -nginx-dir")
	fs.IntVar(&cfg.workers, "nginx-workers", 0, "Nginx worker processes (0 = auto)")
	fs.StringVar(&cfg.render.Listen, "http", ":80", "`ADDR` where Nginx serves the virtual hosts (ip:port or :port)")
	control := fs.String("control", "127.0.0.1:8091", "loopback `ADDR` where Nginx serves the config generation, to verify reloads")
	fs.StringVar(&cfg.render.EnvHeader, "env-header", "", "request header `NAME` that picks the env (off by default; any client can then pick any env)")
	domains := fs.String("domains", "", "comma-separated domains whose virtual hosts are published; others are rejected (required)")
	fs.DurationVar(&cfg.waitMin, "wait-min", nginxctl.DefaultWaitMin, "quiet time that ends a batch of changes; the first change after one applies at once")
	fs.DurationVar(&cfg.waitMax, "wait-max", nginxctl.DefaultWaitMax, "longest a batch of changes waits")
	fs.DurationVar(&cfg.staleAfter, "stale-after", nginxctl.DefaultStaleAfter, "/healthz fails when the view of Marathon is older")
	fs.DurationVar(&cfg.verifyAfter, "verify-timeout", 10*time.Second, "how long a reload may take to be served before it is rolled back")
	fs.BoolVar(&cfg.verbose, "v", false, "log at debug level")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: nginxctl -marathon URL -nginx-dir DIR -domains LIST [flags]
       nginxctl network ...   (the IP pool; not built yet)

Renders the virtual hosts of Marathon apps (label OAK_HTTP) as Nginx config,
per environment, in batches; checks it with nginx -t, reloads Nginx and
verifies the reload; a bad change never replaces the live config.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *corefile != "" {
		return cfg, errors.New("-corefile: not supported yet (the marathon block's parser is not shared with nginxctl); use -marathon and the policy flags")
	}
	var err error
	if cfg.endpoints, cfg.file, err = parseMarathon(*marathonURLs); err != nil {
		return cfg, fmt.Errorf("-marathon: %w", err)
	}
	for _, f := range fallback {
		pattern, parent, ok := strings.Cut(f, "=")
		if !ok {
			return cfg, fmt.Errorf("-fallback %q: want PATTERN=PARENT", f)
		}
		cfg.policy.Fallback = append(cfg.policy.Fallback, catalog.FallbackRule{Pattern: pattern, Parent: parent})
	}
	for _, c := range envCIDR {
		cidr, env, ok := strings.Cut(c, "=")
		prefix, err := netip.ParsePrefix(cidr)
		if !ok || err != nil {
			return cfg, fmt.Errorf("-env-cidr %q: want CIDR=ENV", c)
		}
		cfg.policy.CIDRs = append(cfg.policy.CIDRs, catalog.CIDRRule{Prefix: prefix.Masked(), Env: env})
	}
	if cfg.nginxDir == "" {
		return cfg, errors.New("-nginx-dir is required")
	}
	if cfg.domains, err = nginxctl.ParseDomains(*domains); err != nil {
		return cfg, fmt.Errorf("-domains: %w", err)
	}
	if len(cfg.domains) == 0 {
		return cfg, errors.New("-domains is required: the domains whose virtual hosts this controller publishes")
	}
	if cfg.render.Control, err = netip.ParseAddrPort(*control); err != nil {
		return cfg, fmt.Errorf("-control: %w", err)
	}
	if err := cfg.render.Check(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parseMarathon reads -marathon: masters (a missing scheme means http), or
// one file:// URL.
func parseMarathon(list string) (endpoints []string, file string, err error) {
	for member := range strings.SplitSeq(list, ",") {
		member = strings.TrimSpace(member)
		if member == "" {
			continue
		}
		if path, ok := strings.CutPrefix(member, "file://"); ok {
			if file != "" || path == "" {
				return nil, "", errors.New("one file:///path, alone")
			}
			file = path
			continue
		}
		if !strings.Contains(member, "://") {
			member = "http://" + member
		}
		u, err := url.Parse(member)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("%q: want http(s)://host:port", member)
		}
		endpoints = append(endpoints, strings.TrimSuffix(member, "/"))
	}
	switch {
	case file != "" && len(endpoints) > 0:
		return nil, "", errors.New("a file:// URL must be the only one")
	case file == "" && len(endpoints) == 0:
		return nil, "", errors.New("required: Marathon URL[,URL] or file:///path/apps.json")
	}
	return endpoints, file, nil
}

// serve runs the watcher, Nginx (with -nginx-start), the controller and the
// HTTP API until ctx ends.
func serve(ctx context.Context, cfg config) error {
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	policy, err := catalog.NewPolicy(cfg.policy)
	if err != nil {
		return err
	}
	var src watcher.Source
	if cfg.file != "" {
		src = watcher.NewFile(cfg.file, policy, log)
	} else if src, err = watcher.New(watcher.Config{Endpoints: cfg.endpoints, Policy: policy, Resync: cfg.resync, Logger: log}); err != nil {
		return err
	}
	nginx, err := nginxctl.NewNginx(cfg.nginx, cfg.nginxDir, cfg.workers)
	if err != nil {
		return err
	}
	if err := nginx.Prepare(cfg.render); err != nil {
		return err
	}
	ctl, err := nginxctl.New(nginxctl.Options{
		Source:     &nginxctl.WatcherSource{Source: src, CIDRs: cfg.policy.CIDRs},
		Applier:    nginxctl.NewApplier(nginx, nginxctl.SignalReloader{Nginx: nginx}, cfg.render.Control, cfg.verifyAfter),
		Render:     cfg.render,
		Domains:    cfg.domains,
		Logger:     log,
		WaitMin:    cfg.waitMin,
		WaitMax:    cfg.waitMax,
		StaleAfter: cfg.staleAfter,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	ctl.Register(mux)
	listener, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	api := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("nginxctl starting", "api", listener.Addr().String(), "http", cfg.render.Listen, "nginx_dir", nginx.Dir, "domains", cfg.domains.String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx) })
	if cfg.nginxStart {
		wg.Go(func() { _ = nginx.Supervise(ctx, log, 10*time.Second, nil) })
	}
	wg.Go(func() { _ = ctl.Run(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(shutdown)
	})
	err = api.Serve(listener)
	cancel()
	wg.Wait()
	log.Info("nginxctl stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
