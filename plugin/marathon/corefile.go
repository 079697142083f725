package marathon

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/oakdns/oak/catalog"
)

// Source is where a `marathon` block reads Marathon from, and its policy:
// what nginxctl takes from a Corefile (-corefile), so that one file
// configures DNS and Nginx alike.
type Source struct {
	Where     string   // File:line of the block
	Endpoints []string // Marathon masters; empty when File is set
	File      string   // an apps dump (file:// endpoint)
	User      string
	Password  string
	Token     string
	Resync    time.Duration
	Policy    catalog.PolicyConfig
}

// ReadCorefile returns the `marathon` blocks of the Corefile at path,
// parsed exactly as CoreDNS parses them when it loads the file: the same
// environment substitution, the same options and the same errors.
func ReadCorefile(path string) ([]Source, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	directives := dnsserver.Directives
	if !slices.Contains(directives, pluginName) {
		directives = append(slices.Clip(directives), pluginName) // as cmd/coredns adds it
	}
	blocks, err := caddyfile.Parse(path, file, directives)
	if err != nil {
		return nil, err
	}
	var out []Source
	for _, block := range blocks {
		tokens := block.Tokens[pluginName]
		if len(tokens) == 0 {
			continue
		}
		c := caddy.NewTestController("dns", "")
		c.Dispenser = caddyfile.NewDispenserTokens(path, tokens)
		c.ServerBlockKeys = block.Keys
		opts, _, err := parse(c)
		if err != nil {
			return nil, err
		}
		out = append(out, Source{
			Where: opts.where, Endpoints: opts.endpoints, File: opts.file,
			User: opts.user, Password: opts.password, Token: opts.token,
			Resync: opts.resync, Policy: opts.policy,
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no marathon block", path)
	}
	return out, nil
}
