package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oakdns/oak/internal/seed"
	"github.com/oakdns/oak/internal/testutil"
)

// TestNginxctlSeed runs bin/nginxctl, which starts a real Nginx, against
// bin/marathon-sim with the seed topology: a container of each env
// reaches its own env's app1 through Nginx; when the feature env's app is
// deleted, its clients fall back to integration's.
func TestNginxctlSeed(t *testing.T) {
	nginxPath := testutil.RequireTool(t, "nginx")
	// The seed's app1 backends: HTTP on port 8080 of each app's fixed IP.
	startHTTPBackend(t, seed.IntegrationClient+":8080", "integration/app1")
	startHTTPBackend(t, seed.FeatureClient+":8080", "feature-login/app1")

	url, client := startSim(t, "-health-delay", "10ms")
	deploySeed(t, client)

	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// One file configures DNS and Nginx: nginxctl takes Marathon and the
	// policy from the demo's Corefile, as CoreDNS reads it.
	start(t, []string{"MARATHON_URL=" + url}, "nginxctl",
		"-corefile", "../corefile-examples/demo.Corefile", "-nginx", nginxPath, "-nginx-dir", filepath.Join(t.TempDir(), "nginx"), "-nginx-start",
		"-http", httpAddr, "-control", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-listen", apiAddr,
		"-domains", "example.com", "-wait-min", "200ms", "-wait-max", "1s")

	expectHTTP := func(from, host, want string) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%s from %s to answer %q", host, from, want), func() error {
			got, err := httpGet(from, httpAddr, host)
			if err == nil && !strings.HasPrefix(got, want) {
				err = fmt.Errorf("got %q", got)
			}
			return err
		})
	}
	expectHTTP(seed.IntegrationClient, "app1.example.com", "200 integration/app1")
	expectHTTP(seed.FeatureClient, "app1.example.com", "200 feature-login/app1")
	expectHTTP("127.0.0.1", "app1.example.com", "200 integration/app1")
	expectHTTP(seed.FeatureClient, "redis1.db.example.com", "404 ")

	var view struct {
		VHosts []struct{ Host, Kind, ServingEnv string } `json:"vhosts"`
		Names  []struct {
			Name, Kind string
			ServingEnv string   `json:"serving_env"`
			Addrs      []string `json:"addrs"`
		} `json:"names"`
	}
	resp, err := http.Get("http://" + apiAddr + "/v1/views?env=feature-login")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil || len(view.VHosts) != 1 || view.VHosts[0].Host != "app1.example.com" {
		t.Errorf("/v1/views?env=feature-login: %+v %v", view, err)
	}
	names := map[string]string{}
	for _, n := range view.Names {
		names[n.Name] = n.Kind + " " + n.ServingEnv + " " + strings.Join(n.Addrs, ",")
	}
	if names["redis1.db.example.com"] != "served feature-login 10.199.45.31" || names["db1.db.example.com"] != "served integration 10.199.45.22" {
		t.Errorf("/v1/views?env=feature-login names: %v", names)
	}
	if resp, err := http.Get("http://" + apiAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	if _, err := client.DeleteApplication("/feature-login/app", false); err != nil {
		t.Fatal(err)
	}
	expectHTTP(seed.FeatureClient, "app1.example.com", "200 integration/app1")
}

// startHTTPBackend serves HTTP on addr until the test ends, answering with
// name.
func startHTTPBackend(t *testing.T, addr, name string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("backend %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// httpGet asks Nginx at listen for host from the source address from and
// returns "status body".
func httpGet(from, listen, host string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+listen+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := testutil.ClientFrom(from).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, body), err
}
