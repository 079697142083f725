package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/marathonsim"
)

const testToken = "s3cret-token"

// apiFixture is the API over a new pool, with the Marathon simulator
// behind a client made by NewMarathonClient.
type apiFixture struct {
	pool   *Pool
	sim    *marathonsim.Server
	simURL string
	client marathon.Marathon
	url    string
}

// newAPIFixture's deploys are checked against a policy whose ip_pool is
// the pool's subnet.
func newAPIFixture(t *testing.T, cfg Config) *apiFixture {
	t.Helper()
	return newAPIFixtureWith(t, cfg, catalog.PolicyConfig{IPPools: []netip.Prefix{cfg.Subnet}})
}

func newAPIFixtureWith(t *testing.T, cfg Config, pcfg catalog.PolicyConfig) *apiFixture {
	t.Helper()
	policy, err := catalog.NewPolicy(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFixture{}
	f.pool, _ = newTestPool(t, cfg, newClock())
	f.sim = marathonsim.New(marathonsim.Options{StagingDelay: -1, Logger: slog.New(slog.DiscardHandler)})
	simSrv := httptest.NewServer(f.sim)
	t.Cleanup(simSrv.Close)
	t.Cleanup(f.sim.Close) // runs first: ends the simulator's streams
	f.simURL = simSrv.URL
	mcfg := marathon.NewDefaultConfig()
	mcfg.URL = simSrv.URL
	client, err := NewMarathonClient(mcfg, cfg.IPLabel)
	if err != nil {
		t.Fatal(err)
	}
	f.client = client
	token := func() (string, error) { return testToken, nil }
	srv := httptest.NewServer(NewAPI(f.pool, client, policy, token, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// do sends a request with the test token (unless token is "-") and
// returns the status and the decoded JSON body.
func (f *apiFixture) do(t *testing.T, method, path, body, token string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch token {
	case "":
		req.Header.Set("Authorization", "Bearer "+testToken)
	case "-":
	default:
		req.Header.Set("Authorization", token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d with a body that is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, v
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func field(v any, key string) any {
	m, _ := v.(map[string]any)
	return m[key]
}

func TestAPIAllocations(t *testing.T) {
	f := newAPIFixture(t, testConfig(t, 24))
	status, body := f.do(t, "POST", "/v1/allocations", `{"app":"/team/app1"}`, "")
	if status != 201 || field(body, "address") != "10.77.0.1" || field(body, "result") != "new" {
		t.Fatalf("first POST: %d %v", status, body)
	}
	status, body = f.do(t, "POST", "/v1/allocations", `{"app":"team/app1"}`, "")
	if status != 200 || field(body, "address") != "10.77.0.1" || field(body, "result") != "existing" {
		t.Fatalf("second POST: %d %v", status, body)
	}
	if status, body = f.do(t, "GET", "/v1/allocations/team/app1", "", "-"); status != 200 || field(body, "app") != "/team/app1" {
		t.Fatalf("GET one: %d %v", status, body)
	}
	if status, body = f.do(t, "GET", "/v1/allocations", "", "-"); status != 200 || len(body.([]any)) != 1 {
		t.Fatalf("GET list: %d %v", status, body)
	}
	if status, body = f.do(t, "DELETE", "/v1/allocations/team/app1", "", ""); status != 200 || field(body, "state") != "cooling" || field(body, "until") == nil {
		t.Fatalf("DELETE: %d %v", status, body)
	}
	if status, _ = f.do(t, "GET", "/v1/allocations/team/app1", "", "-"); status != 404 {
		t.Fatalf("GET after DELETE: %d", status)
	}
	if status, _ = f.do(t, "DELETE", "/v1/allocations/team/app1", "", ""); status != 404 {
		t.Fatalf("second DELETE: %d", status)
	}
	if status, body = f.do(t, "GET", "/v1/allocations?state=cooling", "", "-"); status != 200 || len(body.([]any)) != 1 {
		t.Fatalf("GET cooling: %d %v", status, body)
	}
	status, body = f.do(t, "GET", "/v1/pools", "", "-")
	pool, _ := body.([]any)
	if status != 200 || len(pool) != 1 || field(pool[0], "size") != 253.0 || field(pool[0], "cooling") != 1.0 || field(pool[0], "free") != 252.0 {
		t.Fatalf("GET pools: %d %v", status, body)
	}
}

func TestAPIExhausted(t *testing.T) {
	f := newAPIFixture(t, testConfig(t, 30)) // one address
	f.do(t, "POST", "/v1/allocations", `{"app":"/a"}`, "")
	status, body := f.do(t, "POST", "/v1/allocations", `{"app":"/b"}`, "")
	if status != 507 || !strings.Contains(field(body, "error").(string), "no free address") {
		t.Fatalf("full pool: %d %v", status, body)
	}
}

// TestAPIHostileInput sends each endpoint what it must refuse, and checks
// the status, that the answer is a JSON error, and that the pool did not
// change.
func TestAPIHostileInput(t *testing.T) {
	f := newAPIFixture(t, testConfig(t, 24))
	if _, _, err := f.pool.Allocate(context.Background(), "/kept"); err != nil {
		t.Fatal(err)
	}
	big := `{"app":"/` + strings.Repeat("a", 8<<10) + `"}`
	hugeApp := `{"id":"/x","labels":{"k":"` + strings.Repeat("v", 2<<20) + `"}}`
	app := `{"id":"/team/web","container":{"type":"DOCKER","docker":{"image":"web:1"}}}`
	for _, tc := range []struct {
		name, method, path, body, token string
		want                            int
	}{
		{"no token", "POST", "/v1/allocations", `{"app":"/a"}`, "-", 401},
		{"wrong token", "POST", "/v1/allocations", `{"app":"/a"}`, "Bearer nope", 401},
		{"token prefix", "POST", "/v1/allocations", `{"app":"/a"}`, "Bearer " + testToken[:5], 401},
		{"basic auth", "POST", "/v1/allocations", `{"app":"/a"}`, "Basic " + testToken, 401},
		{"delete no token", "DELETE", "/v1/allocations/kept", "", "-", 401},
		{"deploy no token", "POST", "/v1/apps", app, "-", 401},
		{"oversized", "POST", "/v1/allocations", big, "", 413},
		{"oversized app", "POST", "/v1/apps", hugeApp, "", 413},
		{"unknown field", "POST", "/v1/allocations", `{"app":"/a","ip":"10.77.0.9"}`, "", 400},
		{"bad json", "POST", "/v1/allocations", `{"app":`, "", 400},
		{"not an object", "POST", "/v1/allocations", `["/a"]`, "", 400},
		{"trailing data", "POST", "/v1/allocations", `{"app":"/a"}{"app":"/b"}`, "", 400},
		{"empty body", "POST", "/v1/allocations", ``, "", 400},
		{"empty id", "POST", "/v1/allocations", `{"app":""}`, "", 400},
		{"upper case id", "POST", "/v1/allocations", `{"app":"/Team/app"}`, "", 400},
		{"dot-dot id", "POST", "/v1/allocations", `{"app":"/team/../kept"}`, "", 400},
		{"trailing slash id", "POST", "/v1/allocations", `{"app":"/team/"}`, "", 400},
		{"space id", "POST", "/v1/allocations", `{"app":"/team app"}`, "", 400},
		{"nul id", "POST", "/v1/allocations", `{"app":"/team\u0000"}`, "", 400},
		{"unicode id", "POST", "/v1/allocations", `{"app":"/tëam"}`, "", 400},
		{"hyphen edge id", "POST", "/v1/allocations", `{"app":"/-team"}`, "", 400},
		{"root id", "POST", "/v1/allocations", `{"app":"/"}`, "", 400},
		{"id too long", "POST", "/v1/allocations", `{"app":"/` + strings.Repeat("a", 300) + `"}`, "", 400},
		{"path dot-dot", "DELETE", "/v1/allocations/team/../kept", "", "", 400},
		{"path escaped dot-dot", "DELETE", "/v1/allocations/%2e%2e/kept", "", "", 400},
		{"path escaped slash", "GET", "/v1/allocations/team%2F..%2Fkept", "", "-", 400},
		{"path double slash", "GET", "/v1/allocations//kept", "", "-", 400},
		{"path dot", "DELETE", "/v1/allocations/./kept", "", "", 400},
		{"path upper case", "GET", "/v1/allocations/KEPT", "", "-", 400},
		{"bad state", "GET", "/v1/allocations?state=lost", "", "-", 400},
		{"wrong method", "PUT", "/v1/allocations/kept", "", "", 405},
		{"unknown path", "GET", "/v1/nothing", "", "-", 404},
		{"app bad json", "POST", "/v1/apps", `{"id":`, "", 400},
		{"app unknown field", "POST", "/v1/apps", `{"id":"/x","networks":[{"mode":"container/bridge"}]}`, "", 400},
		{"app bad id", "POST", "/v1/apps", `{"id":"/X"}`, "", 400},
		{"app version", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"version":"2017-01-01T00:00:00.000Z","id"`, 1), "", 400},
		{"app tasks", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"tasksRunning":3,"id"`, 1), "", 400},
		{"app two instances", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"instances":2,"id"`, 1), "", 400},
		{"app over capacity", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"upgradeStrategy":{"maximumOverCapacity":1},"id"`, 1), "", 400},
		{"app min health", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"upgradeStrategy":{"minimumHealthCapacity":0.5},"id"`, 1), "", 400},
		{"app unreachable", "POST", "/v1/apps", strings.Replace(app, `{"id"`, `{"unreachableStrategy":{"inactiveAfterSeconds":60},"id"`, 1), "", 400},
		{"app no container", "POST", "/v1/apps", `{"id":"/x","cmd":"sleep 1"}`, "", 400},
		{"app mesos container", "POST", "/v1/apps", `{"id":"/x","container":{"type":"MESOS","docker":{"image":"a"}}}`, "", 400},
		{"app host network", "POST", "/v1/apps", `{"id":"/x","container":{"docker":{"image":"a","network":"HOST"}}}`, "", 400},
		{"app other net", "POST", "/v1/apps", `{"id":"/x","container":{"docker":{"image":"a","parameters":[{"key":"net","value":"bridge"}]}}}`, "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.pool.List("")
			status, body := f.do(t, tc.method, tc.path, tc.body, tc.token)
			if status != tc.want {
				t.Fatalf("%s %s: status %d, want %d (%v)", tc.method, tc.path, status, tc.want, body)
			}
			if status >= 400 {
				if msg, _ := field(body, "error").(string); msg == "" {
					t.Errorf("no error message: %v", body)
				}
			}
			if after := f.pool.List(""); len(after) != len(before) {
				t.Errorf("the pool changed: %v -> %v", before, after)
			}
		})
	}
}

// simApp returns the app as the simulator stores it (every field, also
// those go-marathon cannot read).
func (f *apiFixture) simApp(t *testing.T, id string) map[string]any {
	t.Helper()
	resp, err := http.Get(f.simURL + "/v2/apps" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		App map[string]any `json:"app"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s from the simulator: %d %v", id, resp.StatusCode, err)
	}
	return out.App
}

const webApp = `{"id":"/team/web","cpus":0.1,"mem":64,
	"container":{"type":"DOCKER","docker":{"image":"web:1","network":"BRIDGE",
		"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp"}],
		"parameters":[{"key":"label","value":"team=web"}]}},
	"labels":{"OAK_NAMES":"web.example.com"}}`

func TestAPIDeploy(t *testing.T) {
	f := newAPIFixture(t, testConfig(t, 24))
	status, body := f.do(t, "POST", "/v1/apps", webApp, "")
	if status != 200 || field(body, "address") != "10.77.0.1" || field(body, "deploymentId") == "" {
		t.Fatalf("deploy: %d %v", status, body)
	}
	app := f.simApp(t, "/team/web")
	docker := field(field(app, "container"), "docker")
	params := map[string]string{}
	for _, p := range field(docker, "parameters").([]any) {
		params[field(p, "key").(string)] = field(p, "value").(string)
	}
	want := map[string]string{"label": "team=web", "net": "oak-test", "ip": "10.77.0.1"}
	for k, v := range want {
		if params[k] != v {
			t.Errorf("docker parameter %s = %q, want %q (all: %v)", k, params[k], v, params)
		}
	}
	labels := field(app, "labels")
	if field(labels, "OAK_IP") != "10.77.0.1" || field(labels, "OAK_NAMES") != "web.example.com" {
		t.Errorf("labels %v", labels)
	}
	if app["instances"] != 1.0 || field(app["upgradeStrategy"], "minimumHealthCapacity") != 0.0 || field(app["upgradeStrategy"], "maximumOverCapacity") != 0.0 {
		t.Errorf("instances %v upgradeStrategy %v", app["instances"], app["upgradeStrategy"])
	}
	if app["unreachableStrategy"] != "disabled" {
		t.Errorf("unreachableStrategy %v, want \"disabled\"", app["unreachableStrategy"])
	}

	// Marathon now records the address: a reconcile marks it deployed.
	apps, err := f.client.Applications(url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	observed, errs := ObservedFromApps(apps.Apps, "OAK_IP")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := f.pool.Reconcile(observed, f.pool.now()); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.pool.Get("/team/web"); !a.Deployed || a.Addr.String() != "10.77.0.1" {
		t.Fatalf("after reconcile: %+v", a)
	}

	// An update keeps the address; one that names another is a conflict.
	if err := f.sim.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	update := strings.Replace(webApp, `"web:1"`, `"web:2"`, 1)
	if status, body = f.do(t, "POST", "/v1/apps", update, ""); status != 200 || field(body, "address") != "10.77.0.1" || field(body, "result") != "existing" {
		t.Fatalf("update: %d %v", status, body)
	}
	moved := strings.Replace(webApp, `"labels":{`, `"labels":{"OAK_IP":"10.77.0.9",`, 1)
	if status, body = f.do(t, "POST", "/v1/apps", moved, ""); status != 409 {
		t.Fatalf("another address: %d %v", status, body)
	}
	if a, ok := f.pool.Get("/team/web"); !ok || a.Addr.String() != "10.77.0.1" {
		t.Fatalf("a refused update changed the allocation: %+v %v", a, ok)
	}

	// Marathon still has the app: its address is not released.
	if status, body = f.do(t, "DELETE", "/v1/allocations/team/web", "", ""); status != 409 {
		t.Fatalf("DELETE of a running app: %d %v", status, body)
	}
}

func TestAPIDeployRefusedByMarathonReleasesNewAllocation(t *testing.T) {
	f := newAPIFixture(t, testConfig(t, 24))
	f.sim.FailREST(marathonsim.RESTFault{Count: 1, Status: 422})
	status, body := f.do(t, "POST", "/v1/apps", webApp, "")
	if status != 400 || !strings.Contains(field(body, "error").(string), "Marathon refused /team/web") {
		t.Fatalf("refused deploy: %d %v", status, body)
	}
	if a, ok := f.pool.Get("/team/web"); ok {
		t.Fatalf("the new allocation of a refused deploy is kept: %+v", a)
	}
	// The retry gets the same address back from cooldown.
	status, body = f.do(t, "POST", "/v1/apps", webApp, "")
	if status != 200 || field(body, "address") != "10.77.0.1" || field(body, "result") != "restored" {
		t.Fatalf("retry: %d %v", status, body)
	}
}

// TestAPIDeployChecksLabels: an app the catalog would leave out of DNS and
// Nginx is refused before it reaches Marathon, and holds no address.
func TestAPIDeployChecksLabels(t *testing.T) {
	inPool := catalog.PolicyConfig{IPPools: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")}}
	for _, tc := range []struct {
		name   string
		policy catalog.PolicyConfig
		labels string
		status int
		error  string
	}{
		{"a name with an underscore", inPool, `"OAK_NAMES":"web_1.example.com"`, 400,
			`label OAK_NAMES="web_1.example.com": name "web_1.example.com" contains '_'`},
		{"an env that is no DNS label", inPool, `"OAK_NAMES":"web.example.com","OAK_ENV":"Feature 1"`, 400,
			`label OAK_ENV="Feature 1"`},
		{"a fixed address unlike the Docker one", inPool, `"OAK_NAMES":"web.example.com","OAK_IP":"10.77.0.5"`, 400,
			`label OAK_IP="10.77.0.5": IP 10.77.0.5 differs from the Docker ip parameter "10.77.0.6"`},
		{"a pool outside the policy's ip_pool", catalog.PolicyConfig{IPPools: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}},
			`"OAK_NAMES":"web.example.com"`, 500, `the pool's address for /team/web is refused by the DNS policy (label OAK_IP="10.77.0.1": IP 10.77.0.1 is outside every ip_pool)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAPIFixtureWith(t, testConfig(t, 24), tc.policy)
			app := strings.Replace(webApp, `"labels":{"OAK_NAMES":"web.example.com"}`, `"labels":{`+tc.labels+`}`, 1)
			if strings.Contains(tc.labels, "OAK_IP") {
				app = strings.Replace(app, `{"key":"label","value":"team=web"}`, `{"key":"ip","value":"10.77.0.6"}`, 1)
			}
			status, body := f.do(t, "POST", "/v1/apps", app, "")
			if msg, _ := field(body, "error").(string); status != tc.status || !strings.Contains(msg, tc.error) {
				t.Fatalf("deploy: %d %v, want %d with %q", status, body, tc.status, tc.error)
			}
			if a, ok := f.pool.Get("/team/web"); ok {
				t.Errorf("a refused deploy holds an address: %+v", a)
			}
			if _, err := f.client.Application("/team/web"); err == nil {
				t.Errorf("a refused deploy reached Marathon")
			}
		})
	}
}

func TestAPIWithoutMarathonOrToken(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	for _, tc := range []struct {
		name  string
		token TokenSource
		path  string
		body  string
		want  int
	}{
		{"no marathon", func() (string, error) { return testToken, nil }, "/v1/apps", webApp, 503},
		{"no token source", nil, "/v1/allocations", `{"app":"/a"}`, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(NewAPI(p, nil, nil, tc.token, slog.New(slog.DiscardHandler)))
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestRebuildFromMarathonAlone deploys apps through the API, loses the
// pool's store, and rebuilds a pool from what Marathon (the simulator)
// says: every app is back on its address, and nothing else is handed out
// before the cooldown ends.
func TestRebuildFromMarathonAlone(t *testing.T) {
	cfg := testConfig(t, 28) // 13 addresses
	f := newAPIFixture(t, cfg)
	deployed := map[string]string{}
	for _, app := range []string{"/shop/web", "/shop/db", "/feature-x/web"} {
		body := strings.Replace(webApp, `"/team/web"`, `"`+app+`"`, 1)
		status, resp := f.do(t, "POST", "/v1/apps", body, "")
		if status != 200 {
			t.Fatalf("deploy %s: %d %v", app, status, resp)
		}
		deployed[app] = field(resp, "address").(string)
	}
	// Allocated but never deployed, and released: both unknown to Marathon.
	f.do(t, "POST", "/v1/allocations", `{"app":"/undeployed"}`, "")
	f.do(t, "POST", "/v1/allocations", `{"app":"/released"}`, "")
	f.do(t, "DELETE", "/v1/allocations/released", "", "")

	// A new host: an empty store, and Marathon as the only record.
	clock := newClock()
	p := openTest(t, filepath.Join(t.TempDir(), "new.db"), cfg, WithClock(clock.Now))
	apps, err := f.client.Applications(url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	observed, errs := ObservedFromApps(apps.Apps, cfg.IPLabel)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rep, err := p.Reconcile(observed, clock.Now())
	if err != nil || !rep.Rebuilt || len(rep.Adopted) != 3 || rep.Held != 10 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	for app, addr := range deployed {
		if a, ok := p.Get(app); !ok || a.Addr.String() != addr || !a.Deployed {
			t.Errorf("%s after the rebuild: %+v %v, want %s", app, a, ok, addr)
		}
	}
	if _, _, err := p.Allocate(context.Background(), "/newcomer"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("a rebuilt pool handed out an address it cannot account for: %v", err)
	}
	clock.Add(cfg.Cooldown)
	mustAllocate(t, p, "/newcomer", ResultNew)
}
