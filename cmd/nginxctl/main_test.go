package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	base := []string{"-nginx-dir", "/tmp/x", "-domains", "example.com"}
	for _, tc := range []struct {
		name string
		args []string
		want string // substring of the error; "" = ok
	}{
		{"minimal", append([]string{"-marathon", "m1:8080,http://m2:8080/"}, base...), ""},
		{"file", append([]string{"-marathon", "file:///tmp/apps.json"}, base...), ""},
		{"policy", append([]string{"-marathon", "m1:8080", "-fallback", "feature-* staging", "-env_cidr", "10.0.0.0/8 feature-x",
			"-ip_pool", "10.199.45.0/24", "-ip_allow", "loopback", "-env-header", "X-Oak-Env"}, base...), ""},
		{"no marathon", base, "-marathon: required"},
		{"file and url", append([]string{"-marathon", "file:///a,m1:8080"}, base...), "only one"},
		{"bad scheme", append([]string{"-marathon", "ftp://m1"}, base...), "want http(s)"},
		{"no dir", []string{"-marathon", "m1:8080", "-domains", "example.com"}, "-nginx-dir is required"},
		{"no domains", []string{"-marathon", "m1:8080", "-nginx-dir", "/tmp/x"}, "-domains is required"},
		{"bad domain", []string{"-marathon", "m1:8080", "-nginx-dir", "/tmp/x", "-domains", "a;b"}, "-domains"},
		// The Corefile's errors, word for word.
		{"bad fallback", append([]string{"-marathon", "m1:8080", "-fallback", "feature-*"}, base...), `-fallback "feature-*": fallback takes PATTERN PARENT`},
		{"bad cidr", append([]string{"-marathon", "m1:8080", "-env_cidr", "10.0.0.0 x"}, base...), "env_cidr: invalid CIDR"},
		{"fallback cycle", append([]string{"-marathon", "m1:8080", "-fallback", "a b", "-fallback", "b a"}, base...), "cycle"},
		{"bad ip_allow", append([]string{"-marathon", "m1:8080", "-ip_allow", "multicast"}, base...), "unknown address kind"},
		{"control not loopback", append([]string{"-marathon", "m1:8080", "-control", "10.0.0.1:81"}, base...), "loopback"},
		{"bad http", append([]string{"-marathon", "m1:8080", "-http", "80"}, base...), "listen"},
		{"corefile and flags", append([]string{"-corefile", "Corefile", "-marathon", "m1:8080"}, base...), "leave out -marathon"},
		{"missing corefile", append([]string{"-corefile", "/nonexistent/Corefile"}, base...), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, &bytes.Buffer{})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("parseFlags = %v, want %q", err, tc.want)
			}
			if tc.name == "minimal" && (len(cfg.endpoints) != 2 || cfg.endpoints[0] != "http://m1:8080" || cfg.endpoints[1] != "http://m2:8080") {
				t.Errorf("endpoints %q", cfg.endpoints)
			}
			if tc.name == "policy" && (len(cfg.policy.Fallback) != 1 || len(cfg.policy.CIDRs) != 1 || len(cfg.policy.IPPools) != 1 ||
				len(cfg.policy.IPAllow) != 1 || cfg.render.EnvHeader != "X-Oak-Env") {
				t.Errorf("policy %+v", cfg.policy)
			}
		})
	}
}

func TestHelpListsFlags(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v", err)
	}
	for _, name := range []string{"-marathon", "-listen", "-nginx-dir", "-nginx-start", "-http", "-domains", "-wait-min", "-wait-max",
		"-label_prefix", "-default_env", "-fallback", "-env_cidr", "-ip_pool", "-ip_allow", "-corefile", "-env-header"} {
		if !strings.Contains(out.String(), "  "+name+" ") && !strings.Contains(out.String(), "  "+name+"\n") {
			t.Errorf("-h does not list %s", name)
		}
	}
}

func TestSubcommands(t *testing.T) {
	if err := run([]string{"network", "ensure"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "the pool's settings are needed") {
		t.Errorf("network: %v", err)
	}
	if err := run([]string{"network", "frob"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage: nginxctl network ensure|scan") {
		t.Errorf("network frob: %v", err)
	}
	if err := run([]string{"frobnicate"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}

// TestCorefile: -corefile takes endpoint, credentials and policy from the
// example Corefiles, as CoreDNS reads them; blocks that disagree are an
// error.
func TestCorefile(t *testing.T) {
	t.Setenv("MARATHON_URL", "http://m1:8080,m2:8080")
	t.Setenv("OAK_UPSTREAM", "192.0.2.53:53")
	base := []string{"-nginx-dir", "/tmp/x", "-domains", "example.com"}
	cfg, err := parseFlags(append([]string{"-corefile", "../../corefile-examples/by-client.Corefile"}, base...), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.endpoints, []string{"http://m1:8080", "http://m2:8080"}) || cfg.policy.DefaultEnv != "integration" ||
		len(cfg.policy.Fallback) != 1 || cfg.policy.Fallback[0].Pattern != "feature-*" {
		t.Errorf("by-client.Corefile: %+v", cfg)
	}
	if _, err := parseFlags(append([]string{"-corefile", "../../corefile-examples/by-client-forward.Corefile"}, base...), &bytes.Buffer{}); err != nil {
		t.Errorf("by-client-forward.Corefile: %v", err)
	}
	// Its two blocks differ only in a rule that restates the default.
	t.Setenv("OAK_BIND_INTEGRATION", "127.0.0.53")
	t.Setenv("OAK_BIND_FEATURE_LOGIN", "127.0.0.54")
	if _, err := parseFlags(append([]string{"-corefile", "../../corefile-examples/per-env.Corefile"}, base...), &bytes.Buffer{}); err != nil {
		t.Errorf("per-env.Corefile: %v", err)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"bad option": "example.com {\n marathon {\n  endpoint http://m1\n  fallback feature-*\n }\n}\n",
		"two policies": "a.example.com {\n marathon {\n  endpoint http://m1\n }\n}\n" +
			"b.example.com {\n marathon {\n  endpoint http://m1\n  default_env staging\n }\n}\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := parseFlags(append([]string{"-corefile", path}, base...), &bytes.Buffer{})
		want := map[string]string{"bad option": ":4 - Error during parsing: fallback takes PATTERN PARENT", "two policies": "differ"}[name]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
