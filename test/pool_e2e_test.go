package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oakdns/oak/internal/testutil"
)

// TestNginxctlPool runs bin/nginxctl with its IP pool against
// bin/marathon-sim: an app deployed through nginxctl's POST /v1/apps gets a
// pool address, which Marathon then holds (Docker ip parameter and OAK_IP);
// the pool's mutations need the token; and a controller started again with
// its record lost rebuilds it from Marathon alone, keeping the app's
// address and giving it to no one else.
func TestNginxctlPool(t *testing.T) {
	nginxPath := testutil.RequireTool(t, "nginx")
	url, client := startSim(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "ipam.db")
	startCtl := func(extra ...string) (string, *process) {
		apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		args := append([]string{
			"-marathon", url, "-nginx", nginxPath, "-nginx-dir", filepath.Join(dir, "nginx"), "-nginx-start",
			"-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-control", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"-listen", apiAddr, "-domains", "example.com", "-wait-min", "100ms",
			"-pool-subnet", "10.199.45.0/24", "-pool-gateway", "10.199.45.200", "-pool-aux-address", "DefaultGatewayIPv4=10.199.45.1",
			"-pool-ip-range", "10.199.45.128/26", "-pool-store", store, "-pool-cooldown", "3s",
			"-api-token-file", tokenFile, "-ip_pool", "10.199.45.0/24"}, extra...)
		p := start(t, nil, "nginxctl", args...)
		waitFor(t, "nginxctl's API", func() error {
			_, err := http.Get("http://" + apiAddr + "/healthz")
			return err
		})
		return apiAddr, p
	}
	apiAddr, ctl := startCtl("-pool-fresh") // a first install: nothing was ever handed out

	call := func(method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		var buf bytes.Buffer
		if body != nil {
			json.NewEncoder(&buf).Encode(body)
		}
		req, _ := http.NewRequest(method, "http://"+apiAddr+path, &buf)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]any{}
		json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}
	app := map[string]any{"id": "/feature-login/redis1", "instances": 1, "cpus": 0.1, "mem": 64,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "redis:7", "network": "USER"}},
		"labels":    map[string]string{"OAK_ENV": "feature-login", "OAK_NAMES": "redis1.db.example.com"}}

	if status, _ := call(http.MethodPost, "/v1/apps", "", app); status != http.StatusUnauthorized {
		t.Fatalf("deploy without a token: %d, want 401", status)
	}
	if status, _ := call(http.MethodPost, "/v1/apps", "wrong", app); status != http.StatusUnauthorized {
		t.Fatalf("deploy with a wrong token: %d, want 401", status)
	}
	if status, body := call(http.MethodPost, "/v1/apps", "s3cret", app); status/100 != 2 || body["result"] != "new" {
		t.Fatalf("deploy: %d %v", status, body)
	}
	status, got := call(http.MethodGet, "/v1/allocations/feature-login/redis1", "", nil)
	addr, _ := got["address"].(string)
	ip, err := netip.ParseAddr(addr)
	if status != http.StatusOK || err != nil || !netip.MustParsePrefix("10.199.45.0/24").Contains(ip) ||
		netip.MustParsePrefix("10.199.45.128/26").Contains(ip) || ip.String() == "10.199.45.1" || ip.String() == "10.199.45.200" {
		t.Fatalf("allocation %d %v: want an address of the pool outside Docker's range", status, got)
	}

	// Marathon holds the address: the Docker ip parameter and OAK_IP.
	deployed, err := client.Application("/feature-login/redis1")
	if err != nil {
		t.Fatal(err)
	}
	var param string
	for _, p := range *deployed.Container.Docker.Parameters {
		if p.Key == "ip" {
			param = p.Value
		}
	}
	if (*deployed.Labels)["OAK_IP"] != addr || param != addr || deployed.Instances == nil || *deployed.Instances != 1 {
		t.Fatalf("Marathon's app: labels %v ip parameter %q", *deployed.Labels, param)
	}

	// The record is lost; a new controller rebuilds it from Marathon.
	ctl.Stop(10 * time.Second)
	if err := os.Remove(store); err != nil {
		t.Fatal(err)
	}
	apiAddr, _ = startCtl()
	waitFor(t, "the rebuild from Marathon", func() error {
		status, got := call(http.MethodGet, "/v1/allocations/feature-login/redis1", "", nil)
		if status != http.StatusOK || got["address"] != addr {
			return fmt.Errorf("%d %v", status, got)
		}
		return nil
	})
	// Every address the rebuild could not account for cools down first
	// (a lost record may have handed some out), then goes to others; never
	// the rebuilt app's.
	status, body := call(http.MethodPost, "/v1/allocations", "s3cret", map[string]string{"app": "/integration/redis9"})
	if status != http.StatusInsufficientStorage {
		t.Errorf("a new app right after the rebuild: %d %v, want 507 while the rest cools down", status, body)
	}
	waitFor(t, "the cooldown after the rebuild", func() error {
		status, other := call(http.MethodPost, "/v1/allocations", "s3cret", map[string]string{"app": "/integration/redis9"})
		if status/100 != 2 || other["address"] == addr || other["address"] == nil {
			return fmt.Errorf("%d %v (the rebuilt app holds %s)", status, other, addr)
		}
		return nil
	})
}
