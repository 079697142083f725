package catalog

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func FuzzParseLabels(f *testing.F) {
	f.Add("feature-x", "a.example.com,B.example.com.", "10.0.0.1", "a.example.com:8080", "http:80/tcp")
	f.Add("", "", "", "", "")
	f.Add("Bad", "*.example.com", "fe80::1%eth0", "a.example.com:0", "x:1/sctp")
	f.Add("a", "a,,b", "::ffff:1.2.3.4", "a.example.com:65535,b", "dns:53/udp, dns:53")
	f.Add("a-", "_x.y", "224.0.0.1", "[::1]:80", ":80")
	f.Fuzz(func(t *testing.T, env, names, ip, http, ports string) {
		in := map[string]string{}
		for key, v := range map[string]string{"OAK_ENV": env, "OAK_NAMES": names, "OAK_IP": ip, "OAK_HTTP": http, "OAK_PORTS": ports} {
			if v != "" {
				in[key] = v
			}
		}
		got, err := LabelSchema{}.Parse(in)
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || !strings.HasPrefix(le.Label, "OAK_") || le.Reason == "" {
				t.Fatalf("error %v is not a complete *LabelError", err)
			}
			return
		}
		if got.Env != "" && ValidEnvName(got.Env) != nil {
			t.Errorf("accepted env %q", got.Env)
		}
		if !slices.IsSorted(got.Names) || len(slices.Compact(slices.Clone(got.Names))) != len(got.Names) {
			t.Errorf("names not sorted and unique: %q", got.Names)
		}
		for _, name := range got.Names {
			checkName(t, name)
		}
		if got.IP.IsValid() {
			if got.IP.Zone() != "" || got.IP.IsUnspecified() || got.IP.IsMulticast() || got.IP.Is4In6() {
				t.Errorf("accepted IP %v", got.IP)
			}
		} else if ip != "" {
			t.Errorf("IP label %q accepted without an IP", ip)
		}
		for _, vh := range got.HTTP {
			checkName(t, vh.Host)
		}
		for _, p := range got.Ports {
			if p.Number == 0 || p.Proto != "tcp" && p.Proto != "udp" || strings.Contains(p.Name, ".") {
				t.Errorf("accepted port %+v", p)
			}
			checkName(t, p.Name)
		}
	})
}

// checkName fails unless name is a valid, normalized RFC 1123 name.
func checkName(t *testing.T, name string) {
	t.Helper()
	again, err := parseName(name)
	if err != nil || again != name || len(name) > 253 {
		t.Errorf("accepted name %q does not re-validate: %v", name, err)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			t.Errorf("accepted name %q contains %q", name, c)
		}
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("feature-x", "a.example.com", "10.0.0.1", "a.example.com", "10.0.0.1", "", "a.example.com,b.example.com", "", "10.0.0.2", true, uint8(1))
	f.Add("", "a.example.com", "", "", "2001:db8::1", "feature-y", "a.example.com", "10.0.0.9", "2001:db8::1", false, uint8(0))
	f.Add("staging", "x", "bad", "x:99999", "junk", "staging", "x", "10.0.0.1", "10.0.0.1", true, uint8(2))
	f.Fuzz(func(t *testing.T, env1, names1, ip1, http1, task1, env2, names2, ip2, task2 string, healthy bool, split uint8) {
		p := mustPolicy(t, PolicyConfig{
			Fallback: []FallbackRule{{"feature-*", "staging"}},
			CIDRs:    []CIDRRule{{netip.MustParsePrefix("10.0.0.0/8"), "lab"}},
		})
		labelsOf := func(env, names, ip, http string) map[string]string {
			l := map[string]string{}
			for key, v := range map[string]string{"OAK_ENV": env, "OAK_NAMES": names, "OAK_IP": ip, "OAK_HTTP": http} {
				if v != "" {
					l[key] = v
				}
			}
			return l
		}
		second := testApp("/two", labelsOf(env2, names2, ip2, http1), task(taskRunning, task1, task2))
		if healthy {
			second = withHealthChecks(second)
			second.Tasks[0].Health = []bool{true}
		}
		apps := []App{
			testApp("/one", labelsOf(env1, names1, ip1, http1), running(task1), task("TASK_STAGING", task2, task2)),
			second,
			testApp("/three", labelsOf(env2, names1, "", ""), running(task2)),
		}
		full := Build(p, apps)

		// Every answer the snapshot gives is the reference model's.
		var names, hosts []string
		for _, name := range append(strings.Split(names1+","+names2, ","), "example.com", "", "com") {
			names = append(names, strings.ToLower(strings.TrimSpace(name)))
		}
		for _, host := range strings.Split(http1, ",") {
			host, _, _ = strings.Cut(strings.TrimSpace(host), ":")
			hosts = append(hosts, strings.ToLower(host))
		}
		var probes []netip.Addr
		for _, s := range []string{ip1, ip2, task1, task2} {
			if a, err := netip.ParseAddr(s); err == nil {
				probes = append(probes, a.Unmap().WithZone(""))
				names = append(names, reverseOf(a.Unmap()))
			}
		}
		envs := append(full.Envs(), "", "feature-new", "lab")
		for _, env := range []string{env1, env2} {
			if ValidEnvName(env) == nil {
				envs = append(envs, env)
			}
		}
		agree(t, full, newReference(p, apps), names, hosts, envs, probes)
		for _, view := range full.VHostViews(envs) {
			for _, h := range view.Hosts {
				if want := full.ResolveVHost(view.Env, h.Host); h.Answer.Kind != want.Kind || h.Answer.Service != want.Service {
					t.Errorf("VHostViews %s %s = %v, ResolveVHost says %v", view.Env, h.Host, h.Answer.Kind, want.Kind)
				}
			}
		}
		for _, c := range full.Conflicts() {
			if env, how := full.EnvOf(c.Addr); how != ByConflict || env != p.DefaultEnv() {
				t.Errorf("conflict at %s, but EnvOf = %s %v", c.Addr, env, how)
			}
		}

		cut := int(split) % (len(apps) + 1)
		part := Build(p, apps[:cut])
		sameContent(t, part.Apply(apps[cut:], nil), full)
		sameContent(t, full.Apply(nil, []string{"/one", "/two", "/three"}), Build(p, nil))

		// FixedAddrsChanged never says "same" of different FixedAddrs.
		again := full.Apply(apps, nil) // the same apps once more
		for _, pair := range [][2]*Snapshot{{part, part.Apply(apps[cut:], nil)}, {full, again}, {again, again.Apply(nil, []string{"/two"})}} {
			if !pair[1].FixedAddrsChanged(pair[0]) && !slices.Equal(pair[0].FixedAddrs(), pair[1].FixedAddrs()) {
				t.Errorf("FixedAddrsChanged says same, but %v became %v", pair[0].FixedAddrs(), pair[1].FixedAddrs())
			}
		}
		if again.FixedAddrsChanged(full) {
			t.Errorf("the same apps applied again changed FixedAddrs")
		}
	})
}
