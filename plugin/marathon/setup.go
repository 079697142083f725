package marathon

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

const pluginName = "marathon"

// Defaults of the Corefile options.
const (
	defaultTTL    = 5
	maxTTL        = 3600
	defaultResync = watcher.DefaultResync
)

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// options is a parsed `marathon` block. Nothing in it has been started.
type options struct {
	zones []string // normalized zones the plugin answers for

	endpoints []string // Marathon masters, http(s)://host:port; empty when file is set
	file      string   // apps dump (file:// endpoint), absolute path
	user      string
	password  string
	token     string
	resync    time.Duration

	policy    catalog.PolicyConfig
	pinnedEnv string // "" = env from the client address
	ttl       uint32
	fall      fall.F

	where string // "File:line" of the directive, for errors raised after parsing
}

// optionLines remembers where policy options were written, so that an error
// from catalog.NewPolicy names the Corefile line that caused it.
type optionLines struct {
	block, labelPrefix, defaultEnv int
	fallback, cidr, pool, allow    []int
}

func (l *optionLines) record(option string, line int) {
	switch option {
	case "label_prefix":
		l.labelPrefix = line
	case "default_env":
		l.defaultEnv = line
	case "fallback":
		l.fallback = append(l.fallback, line)
	case "env_cidr":
		l.cidr = append(l.cidr, line)
	case "ip_pool":
		l.pool = append(l.pool, line)
	case "ip_allow":
		l.allow = append(l.allow, line)
	}
}

func setup(c *caddy.Controller) error {
	opts, policy, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	cfg := dnsserver.GetConfig(c)
	h := holderOf(c)
	shared, err := sources.reserve(sourceKeyOf(opts, policy), h, func() (*sharedSource, error) {
		source, err := newSource(opts, policy)
		if err != nil {
			return nil, err
		}
		return newSharedSource(source, sourceLabel(opts)), nil
	})
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	m := &Marathon{
		zones:     opts.zones,
		pinnedEnv: opts.pinnedEnv,
		ttl:       opts.ttl,
		fall:      opts.fall,
		source:    shared.source,
		counters:  requestCounters{keep: configuredEnvs(opts, policy)},
	}

	c.OnStartup(func() error {
		// The plugin chain is compiled before OnStartup runs, so this is the
		// first moment the other plugins of the server block are visible.
		if err := checkCache(cfg, opts); err != nil {
			return err
		}
		shared.read(&m.counters)
		shared.start() // a no-op when an instance before this one started it
		return nil
	})
	c.OnShutdown(func() error {
		shared.unread(&m.counters)
		sources.release(h)
		return nil
	})
	// Registered on the running instance: when the reload that would
	// replace it fails, the new instance's holds go.
	c.OnRestartFailed(func() error {
		sources.prune()
		return nil
	})

	cfg.AddPlugin(func(next plugin.Handler) plugin.Handler {
		m.Next = next
		return m
	})
	return nil
}

// parse reads the `marathon` block into options and validates the policy.
func parse(c *caddy.Controller) (options, *catalog.Policy, error) {
	opts := options{ttl: defaultTTL, resync: defaultResync}
	var lines optionLines
	envFromClient := false
	credentialsLine := 0

	i := 0
	for c.Next() {
		if i > 0 {
			return opts, nil, plugin.ErrOnce
		}
		i++
		lines.block = c.Line()
		opts.where = fmt.Sprintf("%s:%d", c.File(), c.Line())

		args := c.RemainingArgs()
		for _, z := range args {
			if len(plugin.Host(z).NormalizeExact()) == 0 {
				return opts, nil, c.Errf("invalid zone %q", z)
			}
		}
		opts.zones = plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys)

		for c.NextBlock() {
			switch c.Val() {
			case "endpoint":
				if len(opts.endpoints) > 0 || opts.file != "" {
					return opts, nil, c.Err("endpoint given twice; list every Marathon master in one endpoint line")
				}
				endpoints, file, err := parseEndpoints(c.RemainingArgs(), dnsserver.GetConfig(c).Root)
				if err != nil {
					return opts, nil, c.Err(err.Error())
				}
				opts.endpoints, opts.file = endpoints, file
			case "credentials":
				args := c.RemainingArgs()
				if len(args) != 2 {
					return opts, nil, c.ArgErr()
				}
				if opts.token != "" {
					return opts, nil, c.Err("credentials and token are mutually exclusive")
				}
				opts.user, opts.password = args[0], args[1]
				credentialsLine = c.Line()
			case "token":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return opts, nil, c.ArgErr()
				}
				if opts.user != "" {
					return opts, nil, c.Err("credentials and token are mutually exclusive")
				}
				opts.token = args[0]
				credentialsLine = c.Line()
			case "env":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return opts, nil, c.ArgErr()
				}
				if envFromClient || len(opts.policy.CIDRs) > 0 {
					return opts, nil, c.Err("env pins the server block to one env; it cannot be combined with env_from_client or env_cidr")
				}
				if err := catalog.ValidEnvName(args[0]); err != nil {
					return opts, nil, c.Errf("env: %v", err)
				}
				opts.pinnedEnv = args[0]
			case "env_from_client":
				if len(c.RemainingArgs()) != 0 {
					return opts, nil, c.ArgErr()
				}
				if opts.pinnedEnv != "" {
					return opts, nil, c.Err("env_from_client cannot be combined with env")
				}
				envFromClient = true
			case "ttl":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return opts, nil, c.ArgErr()
				}
				ttl, err := strconv.ParseUint(args[0], 10, 32)
				if err != nil || ttl > maxTTL {
					return opts, nil, c.Errf("ttl must be a number of seconds from 0 to %d, got %q", maxTTL, args[0])
				}
				opts.ttl = uint32(ttl)
			case "resync":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return opts, nil, c.ArgErr()
				}
				resync, err := time.ParseDuration(args[0])
				if err != nil || resync <= 0 {
					return opts, nil, c.Errf("resync must be a positive duration such as 30s, got %q", args[0])
				}
				opts.resync = resync
			case "fallthrough":
				opts.fall.SetZonesFromArgs(c.RemainingArgs())
			default:
				name := c.Val()
				if !catalog.IsPolicyOption(name) {
					return opts, nil, c.Errf("unknown property '%s'", name)
				}
				if name == "env_cidr" && opts.pinnedEnv != "" {
					return opts, nil, c.Err("env_cidr cannot be combined with env")
				}
				if err := opts.policy.Option(name, c.RemainingArgs()); err != nil {
					return opts, nil, c.Err(err.Error())
				}
				lines.record(name, c.Line())
			}
		}
	}

	if len(opts.endpoints) == 0 && opts.file == "" {
		return opts, nil, errorAt(c, lines.block, "endpoint is required: a Marathon URL or file:///path/apps.json")
	}
	if opts.file != "" && (opts.user != "" || opts.token != "") {
		return opts, nil, errorAt(c, credentialsLine, "credentials and token have no use with a file:// endpoint")
	}
	policy, err := catalog.NewPolicy(opts.policy)
	if err != nil {
		return opts, nil, errorAt(c, policyErrorLine(opts.policy, lines), err.Error())
	}
	return opts, policy, nil
}

// parseEndpoints reads `endpoint` arguments: Marathon masters, each argument
// possibly a comma-separated list as go-marathon and Marathon's own tools
// write them (members without a scheme get http://), or one file:// URL.
func parseEndpoints(args []string, root string) (endpoints []string, file string, err error) {
	var members []string
	for _, arg := range args {
		for member := range strings.SplitSeq(arg, ",") {
			if member = strings.TrimSpace(member); member != "" {
				members = append(members, member)
			}
		}
	}
	if len(members) == 0 {
		// Caddy has already put in environment variables: an unset or
		// empty {$MARATHON_URL} leaves nothing here.
		return nil, "", errors.New("endpoint needs at least one URL; is the environment variable that gives it (e.g. {$MARATHON_URL}) unset or empty?")
	}
	for _, member := range members {
		if strings.HasPrefix(member, "file:") {
			if len(members) != 1 {
				return nil, "", errors.New("a file:// endpoint must be the only endpoint")
			}
			u, err := url.Parse(member)
			if err != nil {
				return nil, "", fmt.Errorf("invalid endpoint %q: %v", member, err)
			}
			file = u.Host + u.Path
			if file == "" {
				return nil, "", fmt.Errorf("endpoint %q names no file", member)
			}
			if !filepath.IsAbs(file) && root != "" {
				file = filepath.Join(root, file)
			}
			return nil, file, nil
		}
		if !strings.Contains(member, "://") {
			member = "http://" + member
		}
		u, err := url.Parse(member)
		if err != nil {
			return nil, "", fmt.Errorf("invalid endpoint %q: %v", member, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, "", fmt.Errorf("endpoint %q: scheme must be http, https or file", member)
		}
		if u.Host == "" {
			return nil, "", fmt.Errorf("endpoint %q has no host", member)
		}
		endpoints = append(endpoints, strings.TrimSuffix(member, "/"))
	}
	return endpoints, "", nil
}

// policyErrorLine finds the option that makes catalog.NewPolicy fail by
// adding the options one by one in the order the policy reads them.
func policyErrorLine(cfg catalog.PolicyConfig, lines optionLines) int {
	base := catalog.PolicyConfig{LabelPrefix: cfg.LabelPrefix}
	if _, err := catalog.NewPolicy(base); err != nil && lines.labelPrefix > 0 {
		return lines.labelPrefix
	}
	base.DefaultEnv = cfg.DefaultEnv
	if _, err := catalog.NewPolicy(base); err != nil && lines.defaultEnv > 0 {
		return lines.defaultEnv
	}
	for i := range cfg.Fallback {
		base.Fallback = cfg.Fallback[:i+1]
		if _, err := catalog.NewPolicy(base); err != nil {
			return lines.fallback[i]
		}
	}
	for i := range cfg.CIDRs {
		base.CIDRs = cfg.CIDRs[:i+1]
		if _, err := catalog.NewPolicy(base); err != nil {
			return lines.cidr[i]
		}
	}
	base.IPPools, base.IPAllow = cfg.IPPools, cfg.IPAllow
	if _, err := catalog.NewPolicy(base); err != nil && len(lines.pool) > 0 {
		return lines.pool[0]
	}
	return lines.block
}

// errorAt formats an error like caddy's Dispenser.Err, for a line that is
// no longer the current token.
func errorAt(c *caddy.Controller, line int, msg string) error {
	if line == 0 {
		return c.Err(msg)
	}
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, msg)
}
