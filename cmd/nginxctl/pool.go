package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/ipam"
	"github.com/oakdns/oak/watcher"
)

// poolFlags are the IP pool's flags: the pool itself (ipam's -pool-*
// flags, or -pool-config FILE), where it keeps its record, and the token
// its mutations need.
type poolFlags struct {
	spec       ipam.ConfigSpec
	configFile string
	store      string
	tokenFile  string
	fresh      bool
}

func (f *poolFlags) register(fs *flag.FlagSet) {
	f.spec = ipam.DefaultSpec()
	f.spec.RegisterFlags(fs, "pool-")
	fs.StringVar(&f.configFile, "pool-config", "", "the IP pool's configuration as a JSON `FILE` (the -pool-* flags' names), instead of the flags")
	fs.StringVar(&f.store, "pool-store", "", "the IP pool's record (bbolt `FILE`; default ipam.db in -nginx-dir)")
	fs.StringVar(&f.tokenFile, "api-token-file", "", "`FILE` holding the bearer token the pool's mutations need (else $OAK_API_TOKEN)")
	fs.BoolVar(&f.fresh, "pool-fresh", false, "a new pool that has never handed out an address: start with every address free. Without it, a pool without its record\nrebuilds from Marathon and holds every address it cannot account for in cooldown. Never use it when a record was lost")
}

// config returns the pool's configuration, and false when no pool is
// configured (neither -pool-subnet nor -pool-config). The address label
// follows the policy's label prefix unless -pool-ip-label says otherwise.
func (f *poolFlags) config(policy catalog.PolicyConfig) (ipam.Config, bool, error) {
	var cfg ipam.Config
	var err error
	switch {
	case f.configFile != "" && f.spec.Subnet != "":
		return cfg, false, errors.New("-pool-config and the -pool-* flags are exclusive")
	case f.configFile != "":
		cfg, err = ipam.LoadConfig(f.configFile)
	case f.spec.Subnet != "":
		cfg, err = f.spec.Parse()
	default:
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("IP pool: %w", err)
	}
	if cfg.IPLabel == ipam.DefaultIPLabel && policy.LabelPrefix != "" {
		cfg.IPLabel = policy.LabelPrefix + "IP"
	}
	return cfg, true, nil
}

// poolFitsPolicy refuses a pool that would hand out addresses the DNS
// policy refuses as an app's fixed address (ip_pool, ip_allow): the deploy
// checks each app as the catalog will read it (catalog.Policy.Check), so
// every deploy given such an address would fail. Said at start-up, with
// the first such address and why, rather than at each deploy.
func poolFitsPolicy(pcfg ipam.Config, policy *catalog.Policy) error {
	app := catalog.App{ID: "/ipam-pool", Labels: map[string]string{}}
	refused, addrs := 0, pcfg.Addresses()
	var first *catalog.Rejection
	for _, a := range addrs {
		app.Labels[pcfg.IPLabel] = a.String()
		if r := policy.Check(&app); r != nil {
			refused++
			if first == nil {
				first = r
			}
		}
	}
	if first != nil {
		return fmt.Errorf("IP pool: the policy refuses %d of the pool's %d addresses as an app's %s (first %s: %s); put -pool-subnet inside an ip_pool of the policy, or drop the addresses with -pool-exclude",
			refused, len(addrs), first.Label, first.Value, first.Reason)
	}
	return nil
}

// token is where the pool's mutations take their bearer token from: a
// file, else $OAK_API_TOKEN; never a flag's value, which ps shows.
func (f *poolFlags) token() (ipam.TokenSource, error) {
	if f.tokenFile != "" {
		return ipam.TokenFromFile(f.tokenFile)
	}
	return ipam.TokenFromEnv("OAK_API_TOKEN")
}

// runPool opens the pool and returns its API, whose deploys policy checks
// as the DNS and Nginx will read them. Marathon is the record of which app
// runs on which address: reconcile keeps the pool in step with it.
func runPool(cfg config, pcfg ipam.Config, policy *catalog.Policy, reg *prometheus.Registry, log *slog.Logger) (*ipam.Pool, http.Handler, error) {
	token, err := cfg.pool.token()
	if err != nil {
		return nil, nil, fmt.Errorf("IP pool: %w (its API needs a token: -api-token-file or $OAK_API_TOKEN)", err)
	}
	store := cfg.pool.store
	if store == "" {
		store = filepath.Join(cfg.nginxDir, "ipam.db")
	}
	opts := []ipam.Option{ipam.WithRegistry(reg), ipam.WithLogger(log)}
	if cfg.pool.fresh {
		opts = append(opts, ipam.AssumeNew())
	}
	pool, err := ipam.Open(store, pcfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	var deployer marathon.Marathon
	if len(cfg.endpoints) > 0 {
		mcfg := marathon.NewDefaultConfig()
		mcfg.URL = strings.Join(cfg.endpoints, ",")
		mcfg.HTTPBasicAuthUser, mcfg.HTTPBasicPassword, mcfg.DCOSToken = cfg.user, cfg.password, cfg.token
		mcfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
		if deployer, err = ipam.NewMarathonClient(mcfg, pcfg.IPLabel); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	return pool, ipam.NewAPI(pool, deployer, policy, token, log), nil
}

// reconciler is the part of *ipam.Pool that reconcile uses.
type reconciler interface {
	Reconcile(observed []ipam.Observed, now time.Time) (ipam.Report, error)
}

// poolSync reconciles the pool with the snapshots it is given.
type poolSync struct {
	pool reconciler
	log  *slog.Logger
	last *catalog.Snapshot // the snapshot last reconciled with
}

// sync reconciles the pool with s when s's fixed addresses changed since
// the last reconcile (a task change leaves them alone, and a reconcile of
// 10,000 apps costs ~13 ms), or when due (the period, for the grace of
// missing apps). It reports whether it reconciled.
func (p *poolSync) sync(s *catalog.Snapshot, due bool) bool {
	if !due && !s.FixedAddrsChanged(p.last) {
		return false
	}
	var observed []ipam.Observed
	for _, a := range s.FixedAddrs() {
		observed = append(observed, ipam.Observed{App: a.App, Addr: a.Addr})
	}
	if _, err := p.pool.Reconcile(observed, time.Now()); err != nil {
		p.log.Error("IP pool: reconcile with Marathon failed", "err", err)
		return false
	}
	p.last = s
	return true
}

// reconcile keeps the pool in step with Marathon: after every new snapshot
// (see poolSync.sync), and on a period, so that an app gone for the grace
// period is released.
func reconcile(ctx context.Context, pool reconciler, src watcher.Source, changed <-chan struct{}, period time.Duration, log *slog.Logger) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	ps := &poolSync{pool: pool, log: log}
	due := true // the period has passed: reconcile even if nothing changed
	for {
		if s := src.Snapshot(); s != nil && src.Ready() && ps.sync(s, due) {
			due = false
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-ticker.C:
			due = true
		}
	}
}

// networkCommand is `nginxctl network ensure|scan`: it creates the pool's
// Docker network with the pool's settings (an existing one with other
// settings is reported, not changed), or lists the containers on it whose
// addresses the pool did not give to their app.
func networkCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "ensure" && args[0] != "scan" {
		return errors.New("usage: nginxctl network ensure|scan -pool-subnet CIDR -pool-gateway IP ... (or -pool-config FILE)")
	}
	fs := flag.NewFlagSet("nginxctl network "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var pf poolFlags
	pf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	pcfg, ok, err := pf.config(catalog.PolicyConfig{})
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("network: the pool's settings are needed: -pool-subnet and -pool-gateway, or -pool-config FILE")
	}
	cli, err := ipam.NewDockerClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if args[0] == "ensure" {
		created, err := ipam.EnsureNetwork(ctx, cli, pcfg)
		if err != nil {
			return err
		}
		what := "exists with the pool's settings"
		if created {
			what = "created"
		}
		fmt.Fprintf(stdout, "network %s (%s, bridge %s): %s\n", pcfg.Network, pcfg.Subnet, pcfg.Bridge, what)
		return nil
	}
	if pf.store == "" {
		return errors.New("network scan: -pool-store FILE names the pool's record to compare with")
	}
	pool, err := ipam.Open(pf.store, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	conflicts, err := ipam.ScanConflicts(ctx, cli, pool, pcfg.Network)
	if err != nil {
		return err
	}
	for _, c := range conflicts {
		fmt.Fprintln(stdout, c.String())
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%d container(s) on addresses the pool did not give to their app", len(conflicts))
	}
	fmt.Fprintf(stdout, "network %s: no conflicts\n", pcfg.Network)
	return nil
}
