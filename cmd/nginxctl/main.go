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
	"github.com/oakdns/oak/ipam"
	"github.com/oakdns/oak/nginxctl"
	marathonplugin "github.com/oakdns/oak/plugin/marathon"
	"github.com/oakdns/oak/watcher"
	"github.com/prometheus/client_golang/prometheus"
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
			return networkCommand(args[1:], os.Stdout, stderr)
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
	user      string
	password  string
	token     string
	resync    time.Duration
	policy    catalog.PolicyConfig
	pool      poolFlags

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

// policyFlags collects the policy options given as flags, named as in a
// Corefile's marathon block, in order, for catalog.PolicyConfig.Option.
type policyFlags struct {
	given []policyFlag
}

type policyFlag struct{ name, value string }

// option is the flag.Value of one policy option.
type option struct {
	name  string
	flags *policyFlags
}

func (o option) String() string { return "" }

func (o option) Set(v string) error {
	o.flags.given = append(o.flags.given, policyFlag{o.name, v})
	return nil
}

// apply sets the options on cfg with the parser the Corefile uses: a
// flag's value is the option's arguments, as a Corefile line writes them.
func (p *policyFlags) apply(cfg *catalog.PolicyConfig) error {
	for _, f := range p.given {
		if err := cfg.Option(f.name, strings.Fields(f.value)); err != nil {
			return fmt.Errorf("-%s %q: %w", f.name, f.value, err)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("nginxctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	var policy policyFlags
	marathonURLs := fs.String("marathon", "", "Marathon masters, `URL[,URL]` (http(s)://host:port), or file:///path/apps.json for an apps dump")
	corefile := fs.String("corefile", "", "take the Marathon endpoint, credentials, resync and policy from the marathon block of this Corefile `FILE`, instead of -marathon and the policy flags")
	resync := fs.Duration("resync", watcher.DefaultResync, "period of the full resync with Marathon")
	// The policy options, named and parsed as in a Corefile's marathon block.
	for _, o := range []struct{ name, usage string }{
		{"label_prefix", "`PREFIX` of the oak labels on Marathon apps (default OAK_)"},
		{"default_env", "`ENV` of apps and clients nobody placed elsewhere (default integration)"},
		{"fallback", "'`PATTERN PARENT`': envs matching the glob fall back to PARENT (repeatable; first match wins)"},
		{"env_cidr", "'`CIDR ENV`': clients in CIDR belong to ENV unless an app claims their address (repeatable)"},
		{"ip_pool", "`CIDR...`: apps' fixed IPs (OAK_IP) must be inside (repeatable)"},
		{"ip_allow", "`KIND...`: let fixed IPs be loopback, link-local or broadcast addresses"},
	} {
		fs.Var(option{o.name, &policy}, o.name, o.usage)
	}
	cfg.pool.register(fs)
	token := fs.String("marathon-token-file", "", "`FILE` holding a DC/OS token for Marathon (else $OAK_MARATHON_TOKEN)")
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
       nginxctl network ensure|scan -pool-subnet CIDR -pool-gateway IP ...

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
	var err error
	switch {
	case *corefile != "" && (*marathonURLs != "" || len(policy.given) > 0):
		return cfg, errors.New("-corefile gives the Marathon endpoint and the policy: leave out -marathon and the policy flags")
	case *corefile != "":
		if err := fromCorefile(&cfg, *corefile); err != nil {
			return cfg, fmt.Errorf("-corefile: %w", err)
		}
	default:
		if cfg.endpoints, cfg.file, err = parseMarathon(*marathonURLs); err != nil {
			return cfg, fmt.Errorf("-marathon: %w", err)
		}
		if err := policy.apply(&cfg.policy); err != nil {
			return cfg, err
		}
		cfg.resync = *resync
		if cfg.token, err = readToken(*token); err != nil {
			return cfg, err
		}
	}
	if _, err := catalog.NewPolicy(cfg.policy); err != nil {
		return cfg, err
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

// fromCorefile takes the endpoint, credentials, resync and policy from the
// marathon blocks of a Corefile, parsed as CoreDNS parses them. The blocks
// must agree on all of these (a block's pinned env plays no part here):
// nginxctl places clients by address, with one policy.
func fromCorefile(cfg *config, path string) error {
	sources, err := marathonplugin.ReadCorefile(path)
	if err != nil {
		return err
	}
	first := sources[0]
	key := func(src marathonplugin.Source) (string, error) {
		policy, err := catalog.NewPolicy(src.Policy)
		if err != nil {
			return "", fmt.Errorf("%s: %w", src.Where, err)
		}
		src.Where, src.Policy = "", catalog.PolicyConfig{}
		return fmt.Sprintf("%+v %s", src, policy.Key()), nil
	}
	firstKey, err := key(first)
	if err != nil {
		return err
	}
	for _, other := range sources[1:] {
		// Policies compare by what they do, as the plugin's shared watchers do.
		if otherKey, err := key(other); err != nil || otherKey != firstKey {
			return fmt.Errorf("the marathon blocks at %s and %s differ in endpoint, credentials, resync or policy; nginxctl takes one", first.Where, other.Where)
		}
	}
	cfg.endpoints, cfg.file = first.Endpoints, first.File
	cfg.user, cfg.password, cfg.token = first.User, first.Password, first.Token
	cfg.resync, cfg.policy = first.Resync, first.Policy
	return nil
}

// readToken reads a Marathon token from a file, else from
// $OAK_MARATHON_TOKEN: never from a flag's value, which ps shows.
func readToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("OAK_MARATHON_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-marathon-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
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
	} else if src, err = watcher.New(watcher.Config{Endpoints: cfg.endpoints, User: cfg.user, Password: cfg.password, Token: cfg.token,
		Policy: policy, Resync: cfg.resync, Logger: log}); err != nil {
		return err
	}
	pcfg, withPool, err := cfg.pool.config(cfg.policy)
	if err != nil {
		return err
	}
	if withPool {
		if err := poolFitsPolicy(pcfg, policy); err != nil {
			return err
		}
	}
	nginx, err := nginxctl.NewNginx(cfg.nginx, cfg.nginxDir, cfg.workers)
	if err != nil {
		return err
	}
	if err := nginx.Prepare(cfg.render); err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	var pool *ipam.Pool
	var poolAPI http.Handler
	var poolStats nginxctl.PoolStats // stays nil without a pool: a nil *ipam.Pool in it would not be
	if withPool {
		if pool, poolAPI, err = runPool(cfg, pcfg, policy, registry, log); err != nil {
			return err
		}
		defer pool.Close()
		poolStats = pool
	}
	ctl, err := nginxctl.New(nginxctl.Options{
		Registry:   registry,
		Pool:       poolStats,
		Source:     &nginxctl.WatcherSource{Source: src},
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
	if pool != nil {
		for _, pattern := range []string{"/v1/allocations", "/v1/allocations/", "/v1/pools", "/v1/apps"} {
			mux.Handle(pattern, poolAPI)
		}
	}
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
	if pool != nil {
		changed := make(chan struct{}, 1)
		ws := &nginxctl.WatcherSource{Source: src}
		wg.Go(func() {
			ws.Watch(ctx, func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			})
		})
		wg.Go(func() { reconcile(ctx, pool, src, changed, min(pcfg.Grace/2, time.Minute), log) })
	}
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
