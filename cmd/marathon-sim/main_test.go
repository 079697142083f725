package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/oakdns/oak/internal/testutil"
)

func TestHelpDocumentsFlags(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-h"}, &out, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v", err)
	}
	for _, name := range []string{"-listen", "-apps", "-task-cidr", "-staging-delay", "-sse-retry", "-heartbeat", "-user", "-password", "-plan-groups", "-kill-delay", "-health-check-interval", "-docker", "-docker-owner", "not Mesos", "/_sim/", "127.0.0.1:18080"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("-h output lacks %s:\n%s", name, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	tests := [][]string{
		{"-task-cidr", "nope"},
		{"-apps", "/does/not/exist.json"},
		{"-plan-groups", "some"},
		{"extra-arg"},
	}
	for _, args := range tests {
		if err := run(append([]string{"-listen", "127.0.0.1:0"}, args...), io.Discard, nil); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}

// TestServeAndStop starts the command with a fixture, reads it back over
// HTTP and stops it with SIGINT, as an operator would.
func TestServeAndStop(t *testing.T) {
	fixture := testutil.Fixture(t, "marathon/marathon-lb/marathon15_apps.json")
	var (
		mu   sync.Mutex
		body string
		gerr error
	)
	err := run([]string{"-listen", "127.0.0.1:0", "-apps", fixture, "-user", "u", "-password", "p"}, io.Discard, func(addr string) {
		defer func() { _ = syscall.Kill(syscall.Getpid(), syscall.SIGINT) }()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/apps?embed=apps.tasks", nil)
		req.SetBasicAuth("u", "p")
		resp, err := http.DefaultClient.Do(req)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			gerr = err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gerr != nil || !strings.Contains(body, `"pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"`) {
		t.Fatalf("GET /v2/apps: %v %s", gerr, body)
	}
}
