package nginxctl

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzSanitize: whatever a model holds, Sanitize's output validates and
// renders, and a value that is neither a valid host nor a valid env never
// appears in the text (unless the template itself holds it, as it holds
// spaces and braces).
func FuzzSanitize(f *testing.F) {
	f.Add("app1.example.com", "feature-x", "integration", []byte{127, 0, 0, 1}, uint16(8080), false)
	f.Add("a.example.com;\ninclude x;", "x}", "", []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1}, uint16(0), true)
	f.Fuzz(func(t *testing.T, host, env, serving string, ip []byte, port uint16, isHeld bool) {
		addr, _ := netip.AddrFromSlice(ip)
		r := Route{Host: host, Env: serving, Held: isHeld}
		if !isHeld {
			r.Backends = []Backend{{Addr: addr, Port: port}, {Addr: addr, Port: port + 1}}
		}
		m := Model{
			DefaultEnv: "integration",
			Clients:    []ClientEnv{{Addr: addr, Env: env}},
			Default:    []Route{r},
			Envs:       []EnvRoutes{{Env: env, Routes: []Route{r, r}}},
		}
		if p, err := addr.Prefix(8); err == nil {
			m.CIDRs = []CIDREnv{{Prefix: p, Env: env}}
		}
		clean, _, err := m.Sanitize(Domains{"example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if err := clean.Validate(); err != nil {
			t.Fatalf("Sanitize's output does not validate: %v", err)
		}
		cfg, err := Render(&clean, testOpts)
		if err != nil {
			t.Fatal(err)
		}
		template, err := Render(&Model{DefaultEnv: "integration"}, testOpts)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{host, env, serving} {
			if checkHost(v) != nil && checkEnv(v) != nil && !strings.Contains(string(template.Text), v) && strings.Contains(string(cfg.Text), v) {
				t.Fatalf("the config carries %q", v)
			}
		}
	})
}
