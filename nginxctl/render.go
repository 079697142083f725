package nginxctl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// GenerationPath is where the control listener serves the generation of
// the config Nginx runs, so that a reload can be verified.
const GenerationPath = "/_oak/generation"

// waitingGeneration is the generation of the config written before the
// first view of Marathon.
const waitingGeneration = "waiting"

// RenderOptions are the parts of the config that do not come from the
// catalog.
type RenderOptions struct {
	// Listen is where Nginx serves the virtual hosts, host:port or :port.
	Listen string
	// Control is the loopback address:port where Nginx serves the
	// generation (GenerationPath).
	Control netip.AddrPort
	// EnvHeader, when set, names a request header whose value picks the
	// client's env (any env the model knows) instead of its address. Off
	// by default: any client can then claim any env.
	EnvHeader string

	// upstreamAlways renders an upstream block for every route: the
	// one-upstream-per-vhost layout, the baseline of the benchmarks.
	upstreamAlways bool
}

// Check validates the options as Render writes them.
func (o RenderOptions) Check() error {
	if err := checkListen(o.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if !o.Control.IsValid() || !o.Control.Addr().IsLoopback() || o.Control.Port() == 0 {
		return fmt.Errorf("control %s: want a loopback address:port", o.Control)
	}
	if o.EnvHeader != "" {
		if len(o.EnvHeader) > 64 || strings.IndexFunc(o.EnvHeader, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
		}) >= 0 {
			return fmt.Errorf("env header %q: want 1 to 64 of [A-Za-z0-9-]", shown(o.EnvHeader))
		}
	}
	return nil
}

// checkListen accepts ip:port, [ip6]:port and :port.
func checkListen(listen string) error {
	if port, ok := strings.CutPrefix(listen, ":"); ok {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%q: want ip:port or :port", shown(listen))
		}
		return nil
	}
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || ap.Port() == 0 || checkAddr(ap.Addr()) != nil {
		return fmt.Errorf("%q: want ip:port or :port", shown(listen))
	}
	return nil
}

// Config is rendered Nginx config text (the http-context include) and the
// generation it serves on the control listener. Equal models and options
// render byte-identical text, and the generation is a hash of the rest of
// the text, so an unchanged model changes nothing on disk.
type Config struct {
	Text       []byte
	Generation string
}

// Render writes m as Nginx config. It refuses a model or options that do
// not validate: only checked values reach the text.
//
// The layout: a geo block maps the client address to its env ($oak_env);
// one map looks "env|host" up among the envs' own routes, falling back to
// a map of the default env's routes by host; the value is the backend
// addr:port that proxy_pass takes as it is (no upstream block), the name
// of an upstream block for routes with several backends, or "held:ENV".
// Its size follows the routes the envs own, not envs times hosts.
func Render(m *Model, o RenderOptions) (Config, error) {
	if err := m.Validate(); err != nil {
		return Config{}, fmt.Errorf("render: invalid model: %w", err)
	}
	if err := o.Check(); err != nil {
		return Config{}, fmt.Errorf("render: %w", err)
	}
	var b bytes.Buffer
	b.Grow(256 + 64*m.Routes() + 48*len(m.Clients))

	r := renderer{b: &b, m: m, o: o, upstreams: map[string]string{}}
	r.hashSizes()
	r.geo()
	r.routes()
	r.upstreamBlocks()
	r.vhostServer()
	body := b.Bytes()

	sum := sha256.Sum256(body)
	gen := hex.EncodeToString(sum[:8])
	return Config{Text: withGeneration(body, gen, o.Control), Generation: gen}, nil
}

// renderWaiting is the config before the first view: every virtual host
// answers 503, and the control listener serves the generation "waiting".
func renderWaiting(o RenderOptions) (Config, error) {
	if err := o.Check(); err != nil {
		return Config{}, fmt.Errorf("render: %w", err)
	}
	body := fmt.Appendf(nil, `server {
    listen %s default_server;
    server_name _;
    default_type text/plain;
    return 503 "oak: no view of Marathon yet\n";
}
`, o.Listen)
	return Config{Text: withGeneration(body, waitingGeneration, o.Control), Generation: waitingGeneration}, nil
}

// withGeneration puts a header naming gen before body and the control
// server after it.
func withGeneration(body []byte, gen string, control netip.AddrPort) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + 512)
	fmt.Fprintf(&b, "# Written by nginxctl; replaced whole on every change.\n# generation %s\n", gen)
	b.Write(body)
	fmt.Fprintf(&b, `server {
    listen %s;
    access_log off;
    location = %s {
        default_type text/plain;
        return 200 "%s\n";
    }
    location / {
        return 404;
    }
}
`, control, GenerationPath, gen)
	return b.Bytes()
}

// liveGeneration reads the generation from the header of rendered text.
func liveGeneration(text []byte) string {
	_, rest, ok := bytes.Cut(text, []byte("\n# generation "))
	if !ok {
		return ""
	}
	gen, _, _ := bytes.Cut(rest, []byte("\n"))
	return string(gen)
}

type renderer struct {
	b         *bytes.Buffer
	m         *Model
	o         RenderOptions
	upstreams map[string]string // upstream name -> its server lines
}

// hashSizes sizes the maps' hash tables: the bucket holds the longest key
// ("env|host"), and the table may grow to hold every key.
func (r *renderer) hashSizes() {
	longest, keys := len(r.m.DefaultEnv), len(r.m.Default)
	for _, rt := range r.m.Default {
		longest = max(longest, len(rt.Host))
	}
	for _, e := range r.m.Envs {
		keys += len(e.Routes)
		for _, rt := range e.Routes {
			longest = max(longest, len(e.Env)+1+len(rt.Host))
		}
	}
	// An entry is a pointer plus the key and two bytes, aligned to 8; a
	// bucket ends with a pointer.
	bucket := 64
	for bucket < 8+(longest+2+7)/8*8+8 {
		bucket *= 2
	}
	size := 1024
	for size < 2*keys {
		size *= 2
	}
	fmt.Fprintf(r.b, "map_hash_bucket_size %d;\nmap_hash_max_size %d;\n", bucket, size)
}

// geo writes the client address -> env classification. Nginx's geo picks
// the most specific network, so a client's own address beats any CIDR.
func (r *renderer) geo() {
	variable := "$oak_env"
	if r.o.EnvHeader != "" {
		variable = "$oak_client_env"
	}
	fmt.Fprintf(r.b, "geo $remote_addr %s {\n    default %s;\n", variable, r.m.DefaultEnv)
	clients := make(map[netip.Prefix]bool, len(r.m.Clients))
	for _, c := range r.m.Clients {
		prefix := netip.PrefixFrom(c.Addr, c.Addr.BitLen())
		clients[prefix] = true
		fmt.Fprintf(r.b, "    %s %s;\n", prefix, c.Env)
	}
	for _, c := range r.m.CIDRs {
		if !clients[c.Prefix] { // an app's claim beats a rule for the same address
			fmt.Fprintf(r.b, "    %s %s;\n", c.Prefix, c.Env)
		}
	}
	r.b.WriteString("}\n")
	if r.o.EnvHeader == "" {
		return
	}
	// Only envs the model knows can be picked; anything else keeps the
	// client's own env.
	envs := []string{r.m.DefaultEnv}
	for _, e := range r.m.Envs {
		envs = append(envs, e.Env)
	}
	for _, c := range r.m.Clients {
		envs = append(envs, c.Env)
	}
	for _, c := range r.m.CIDRs {
		envs = append(envs, c.Env)
	}
	slices.Sort(envs)
	header := strings.ToLower(strings.ReplaceAll(r.o.EnvHeader, "-", "_"))
	fmt.Fprintf(r.b, "map $http_%s $oak_env {\n    default $oak_client_env;\n", header)
	for _, env := range slices.Compact(envs) {
		fmt.Fprintf(r.b, "    %s %s;\n", mapKey(env), env)
	}
	r.b.WriteString("}\n")
}

// routes writes the env|host and host maps, and the held-env map.
func (r *renderer) routes() {
	held := map[string]bool{}
	r.b.WriteString("map \"$oak_env|$host\" $oak_route {\n    default $oak_default_route;\n")
	for _, e := range r.m.Envs {
		for _, rt := range e.Routes {
			fmt.Fprintf(r.b, "    \"%s|%s\" %s;\n", e.Env, rt.Host, r.target(rt, held))
		}
	}
	r.b.WriteString("}\nmap $host $oak_default_route {\n    default \"\";\n")
	for _, rt := range r.m.Default {
		fmt.Fprintf(r.b, "    %s %s;\n", mapKey(rt.Host), r.target(rt, held))
	}
	r.b.WriteString("}\nmap $oak_route $oak_held_env {\n    default \"\";\n")
	envs := make([]string, 0, len(held))
	for env := range held {
		envs = append(envs, env)
	}
	slices.Sort(envs)
	for _, env := range envs {
		fmt.Fprintf(r.b, "    held:%s %s;\n", env, env)
	}
	r.b.WriteString("}\n")
}

// mapKey escapes the words a map block reads as its own parameters.
func mapKey(key string) string {
	switch key {
	case "default", "hostnames", "include", "volatile":
		return `\` + key
	}
	return key
}

// target is the $oak_route value of rt: addr:port, an upstream name, or
// held:ENV.
func (r *renderer) target(rt Route, held map[string]bool) string {
	switch {
	case rt.Held:
		held[rt.Env] = true
		return "held:" + rt.Env
	case len(rt.Backends) == 1 && !r.o.upstreamAlways:
		return rt.Backends[0].String()
	}
	var servers strings.Builder
	for _, be := range rt.Backends {
		fmt.Fprintf(&servers, "    server %s;\n", be)
	}
	sum := sha256.Sum256([]byte(servers.String()))
	name := "oak_" + hex.EncodeToString(sum[:8])
	r.upstreams[name] = servers.String()
	return name
}

// upstreamBlocks writes one upstream per distinct set of backends.
func (r *renderer) upstreamBlocks() {
	names := make([]string, 0, len(r.upstreams))
	for name := range r.upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(r.b, "upstream %s {\n%s}\n", name, r.upstreams[name])
	}
}

func (r *renderer) vhostServer() {
	fmt.Fprintf(r.b, `server {
    listen %s default_server;
    server_name _;
    default_type text/plain;
    add_header X-Oak-Env $oak_env always;
    location / {
        if ($oak_route = "") {
            return 404 "oak: no such virtual host for env $oak_env\n";
        }
        if ($oak_held_env != "") {
            return 503 "oak: $host is held by env $oak_held_env: registered there, nothing live\n";
        }
        proxy_pass http://$oak_route;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Oak-Env $oak_env;
    }
}
`, r.o.Listen)
}

// errNoView is returned while the source has no view yet.
var errNoView = errors.New("no view of Marathon yet")
