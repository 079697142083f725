package main

import (
	"bytes"
	"errors"
	"flag"
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
		{"policy", append([]string{"-marathon", "m1:8080", "-fallback", "feature-*=staging", "-env-cidr", "10.0.0.0/8=feature-x", "-env-header", "X-Oak-Env"}, base...), ""},
		{"no marathon", base, "-marathon: required"},
		{"file and url", append([]string{"-marathon", "file:///a,m1:8080"}, base...), "only one"},
		{"bad scheme", append([]string{"-marathon", "ftp://m1"}, base...), "want http(s)"},
		{"no dir", []string{"-marathon", "m1:8080", "-domains", "example.com"}, "-nginx-dir is required"},
		{"no domains", []string{"-marathon", "m1:8080", "-nginx-dir", "/tmp/x"}, "-domains is required"},
		{"bad domain", []string{"-marathon", "m1:8080", "-nginx-dir", "/tmp/x", "-domains", "a;b"}, "-domains"},
		{"bad fallback", append([]string{"-marathon", "m1:8080", "-fallback", "feature-*"}, base...), "PATTERN=PARENT"},
		{"bad cidr", append([]string{"-marathon", "m1:8080", "-env-cidr", "10.0.0.0=x"}, base...), "CIDR=ENV"},
		{"control not loopback", append([]string{"-marathon", "m1:8080", "-control", "10.0.0.1:81"}, base...), "loopback"},
		{"bad http", append([]string{"-marathon", "m1:8080", "-http", "80"}, base...), "listen"},
		{"corefile", append([]string{"-corefile", "Corefile"}, base...), "not supported yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, &bytes.Buffer{})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("parseFlags = %v, want %q", err, tc.want)
			}
			if tc.name == "minimal" && (len(cfg.endpoints) != 2 || cfg.endpoints[0] != "http://m1:8080" || cfg.endpoints[1] != "http://m2:8080") {
				t.Errorf("endpoints %q", cfg.endpoints)
			}
			if tc.name == "policy" && (len(cfg.policy.Fallback) != 1 || len(cfg.policy.CIDRs) != 1 || cfg.render.EnvHeader != "X-Oak-Env") {
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
		"-label-prefix", "-default-env", "-fallback", "-env-cidr", "-corefile", "-env-header"} {
		if !strings.Contains(out.String(), "  "+name+" ") && !strings.Contains(out.String(), "  "+name+"\n") {
			t.Errorf("-h does not list %s", name)
		}
	}
}

func TestSubcommands(t *testing.T) {
	if err := run([]string{"network", "ensure"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not built yet") {
		t.Errorf("network: %v", err)
	}
	if err := run([]string{"frobnicate"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}
