package nginxctl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/isolation"
	"github.com/oakdns/oak/ipam"
)

// isolationSnapshot loads the shared isolation table and its snapshot.
func isolationSnapshot(t *testing.T) (*isolation.Table, *catalog.Snapshot) {
	t.Helper()
	table, err := isolation.Load()
	if err != nil {
		t.Fatal(err)
	}
	s, err := table.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return table, s
}

// statusController returns a controller that has synced once with s.
func statusController(t testing.TB, s *catalog.Snapshot, pool PoolStats) *Controller {
	t.Helper()
	fw := &fakeWatcher{}
	fw.snapshot.Store(s)
	fw.synced.Store(time.Now().UnixNano())
	ctl, err := New(Options{Source: &WatcherSource{Source: fw}, Applier: &fakeApplier{}, Render: testOpts,
		Domains: Domains{"example.com"}, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ctl
}

// getStatus asks ctl's mux for target and returns the response and body.
func getStatus(t testing.TB, ctl *Controller, target string) (*http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	ctl.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

// seedSnapshot is the seed's envs with a rejected app whose label is
// hostile markup.
func seedSnapshot(t testing.TB, hostile string) *catalog.Snapshot {
	p := mustPolicy(t, catalog.PolicyConfig{Fallback: []catalog.FallbackRule{{Pattern: "feature-*", Parent: "integration"}}})
	named := func(a catalog.App, names string) catalog.App { a.Labels["OAK_NAMES"] = names; return a }
	return catalog.Build(p, []catalog.App{
		named(app("/integration/app", "", "127.0.1.10", "app1.example.com:8080"), "app1.example.com"),
		named(app("/integration/redis1", "", "10.199.45.21", ""), "redis1.db.example.com"),
		named(app("/integration/db", "", "10.199.45.22", ""), "db1.db.example.com"),
		named(app("/feature-login/app", "feature-login", "127.0.2.10", "app1.example.com:8080"), "app1.example.com"),
		named(app("/feature-login/redis1", "feature-login", "10.199.45.31", ""), "redis1.db.example.com"),
		named(app("/feature-login/evil", "feature-login", "10.199.45.39", ""), hostile),
	})
}

// TestStatusCellsFollowTheIsolationTable: every matrix cell of a name or
// vhost the table asks about says what the table says a client of that env
// gets (own env, fallback to which env, held, absent), with its backends.
func TestStatusCellsFollowTheIsolationTable(t *testing.T) {
	table, s := isolationSnapshot(t)
	ctl := statusController(t, s, nil)
	type check struct {
		client, name, kind, env string
		http                    bool
		backends                []string
	}
	var checks []check
	for _, c := range table.Names {
		if _, claimed := slices.BinarySearch(s.Names(), c.Name); claimed { // rows are claimed names
			checks = append(checks, check{c.Client, c.Name, c.Kind, c.Env, false, c.Addrs})
		}
	}
	for _, c := range table.VHosts {
		if _, published := slices.BinarySearch(s.VHosts(), c.Host); published {
			checks = append(checks, check{c.Client, c.Host, c.Kind, c.Env, true, c.Backends})
		}
	}
	if len(checks) < 20 {
		t.Fatalf("only %d cases of the table are rows", len(checks))
	}
	for _, c := range checks {
		env, _ := s.EnvOf(netip.MustParseAddr(c.client))
		page := ctl.statusPage(statusQuery{Text: c.name, Patterns: []string{env}, Page: 1, Cols: 1}, time.Now())
		i := slices.IndexFunc(page.Rows, func(r statusRow) bool { return r.Name == c.name && r.HTTP == c.http })
		if i < 0 || !slices.Equal(page.Envs, []string{env}) {
			t.Errorf("%s (http %v) for %s: no row or column in %+v", c.name, c.http, env, page.Rows)
			continue
		}
		cell := page.Rows[i].Cells[0]
		var want string
		switch {
		case c.kind == "served" && c.env == env:
			want = "own own"
		case c.kind == "served":
			want = "fallback → " + c.env
		case c.kind == "held" && c.env == env:
			want = "held held"
		case c.kind == "held":
			want = "held held by " + c.env
		default:
			want = "absent —"
		}
		if got := cell.Class + " " + cell.Text; got != want {
			t.Errorf("%s (http %v) for a client of %s (%s): cell %q, the table says %s %s", c.name, c.http, env, c.client, got, c.kind, c.env)
		}
		for _, b := range c.backends {
			if !strings.Contains(cell.Title, b) {
				t.Errorf("%s for %s: title %q lacks backend %s", c.name, env, cell.Title, b)
			}
		}
	}
}

// TestStatusEnvSections: each env's chain, apps and clients, and how they
// are classified (app, CIDR, default, conflict), from the isolation table.
func TestStatusEnvSections(t *testing.T) {
	_, s := isolationSnapshot(t)
	page := statusController(t, s, nil).statusPage(statusQuery{Page: 1, Cols: 1}, time.Now())
	if want := []string{"integration", "feature-office", "feature-x", "feature-y", "feature-z", "staging"}; !slices.Equal(page.Envs, want) {
		t.Fatalf("columns %v, want %v", page.Envs, want)
	}
	sections := map[string]string{}
	for _, e := range page.EnvInfo {
		var clients []string
		for _, c := range e.Clients {
			clients = append(clients, c.Addr.String()+" app")
		}
		for _, r := range e.CIDRs {
			clients = append(clients, r.Prefix.String()+" cidr")
		}
		for _, c := range e.Conflicts {
			clients = append(clients, c.Addr.String()+" conflict "+strings.Join(c.Apps, ","))
		}
		if e.Default {
			clients = append(clients, "default")
		}
		sections[e.Env] = fmt.Sprintf("chain %s; apps %s; clients %s", strings.Join(e.Chain, ">"), strings.Join(e.Apps, ","), strings.Join(clients, ", "))
	}
	for env, want := range map[string]string{
		"integration":    "chain integration; apps /int/app1,/int/db,/int/redis1; clients 10.199.45.10 app, 10.199.45.21 app, 10.199.45.22 app, 10.199.45.50 conflict /evil/conflict,/fy/app1, default",
		"staging":        "chain staging>integration; apps /stg/redis1; clients 10.199.45.41 app, 10.9.0.0/16 cidr",
		"feature-x":      "chain feature-x>staging>integration; apps /fx/app1,/fx/redis1; clients 10.199.45.31 app, 10.199.45.32 app",
		"feature-office": "chain feature-office>staging>integration; apps ; clients 10.9.5.0/24 cidr",
		"feature-y":      "chain feature-y>staging>integration; apps ; clients ",
	} {
		if sections[env] != want {
			t.Errorf("env %s:\n got %s\nwant %s", env, sections[env], want)
		}
	}
}

// TestStatusPageHTML: the page as a browser gets it: escaped, with no
// script allowed, the seed's fallback, the detail view, and the pool or
// its absence.
func TestStatusPageHTML(t *testing.T) {
	const hostile = `<script>window.__oakxss=1</script><img src=x onerror="window.__oakxss=2">`
	s := seedSnapshot(t, hostile)
	ctl := statusController(t, s, nil)

	resp, body := getStatus(t, ctl, "/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("/: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{
		`&lt;script&gt;window.__oakxss=1&lt;/script&gt;&lt;img src=x onerror=&#34;window.__oakxss=2&#34;&gt;`, // the label, as text
		`<tr data-row="redis1.db.example.com dns">`,
		`<td class="own" data-env="feature-login" title="served by feature-login: 10.199.45.31">own</td>`,
		`<td class="fallback" data-env="feature-login" title="fallen back to integration: 10.199.45.22">→ integration</td>`,
		`<td class="own" data-env="feature-login" title="served by feature-login: 127.0.2.10:8080">own</td>`,
		`feature-login → integration`,
		`no IP pool configured`,
		`<b id="result">ok</b>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/ lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
		t.Errorf("/ holds markup from a label:\n%s", body)
	}

	resp, body = getStatus(t, ctl, "/?name=db1.db.example.com")
	if resp.StatusCode != 200 || !strings.Contains(body, `<tr data-env="feature-login"><th>feature-login</th><td class="mono">feature-login → integration</td>`) ||
		!strings.Contains(body, "/integration/db") {
		t.Errorf("/?name=db1.db.example.com: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := getStatus(t, ctl, "/?name=nosuch.example.com"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/?name of an unknown name: %d, want 404", resp.StatusCode)
	}
	for _, bad := range []string{"/?page=0", "/?cols=x", "/?env=%5B", "/?q=" + strings.Repeat("a", 300), "/?env=" + strings.Repeat("a,", 20)} {
		if resp, _ := getStatus(t, ctl, bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := getStatus(t, ctl, "/nosuch"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nosuch: %d, want 404", resp.StatusCode)
	}

	pool := fakePool{ipam.Stats{Subnet: netip.MustParsePrefix("10.199.45.0/24"), Size: 250, Allocated: 7, Cooling: 2, Free: 241,
		Conflicts: []ipam.Conflict{{App: "/x/<b>", Addr: netip.MustParseAddr("10.199.45.9"), Reason: "taken"}}}}
	_, body = getStatus(t, statusController(t, s, pool), "/")
	for _, want := range []string{"10.199.45.0/24: 7 allocated, 2 cooling, 241 free of 250", "1 conflicts", "/x/&lt;b&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("/ with a pool lacks %q", want)
		}
	}
}

type fakePool struct{ stats ipam.Stats }

func (f fakePool) Stats() ipam.Stats { return f.stats }

// TestStatusPaging: rows and env columns come a page at a time, filters
// apply before paging, and a page past the end shows the last.
func TestStatusPaging(t *testing.T) {
	ctl := statusController(t, syntheticSnapshot(t, 120, 25), nil)
	for _, c := range []struct {
		query                  statusQuery
		rows, envs             int
		first, firstEnv, total string
	}{
		{statusQuery{Page: 1, Cols: 1}, 50, 10, "app00000.example.com", "integration", "240 25"},
		{statusQuery{Page: 3, Cols: 3}, 50, 5, "app00050.example.com", "feature-020", "240 25"},
		{statusQuery{Page: 9, Cols: 9}, 40, 5, "app00100.example.com", "feature-020", "240 25"},
		{statusQuery{Text: "app0011", Patterns: []string{"feature-00*"}, Page: 1, Cols: 1}, 20, 9, "app00110.example.com", "feature-001", "20 9"},
	} {
		page := ctl.statusPage(c.query, time.Now())
		if len(page.Rows) != c.rows || len(page.Envs) != c.envs || page.Rows[0].Name != c.first || page.Envs[0] != c.firstEnv ||
			fmt.Sprint(page.RowsTotal, " ", page.EnvsTotal) != c.total || len(page.EnvInfo) != c.envs {
			t.Errorf("%+v: %d rows from %s, %d envs from %s, totals %d %d", c.query, len(page.Rows), page.Rows[0].Name, len(page.Envs), page.Envs[0], page.RowsTotal, page.EnvsTotal)
		}
	}
}

func TestPager(t *testing.T) {
	link := func(p int) string { return fmt.Sprint(p) }
	for _, c := range []struct {
		items, current, page int
		want                 string
	}{
		{10, 1, 1, ""},
		{120, 2, 2, "1 [2] 3"},
		{120, 7, 3, "1 2 [3]"},
		{1000, 10, 10, "1 2 … 8 9 [10] 11 12 … 19 20"},
	} {
		page, links := pager(c.items, 50, c.current, link)
		var got []string
		for _, l := range links {
			switch {
			case l.Current:
				got = append(got, "["+l.Label+"]")
			default:
				got = append(got, l.Label)
			}
		}
		if page != c.page || strings.Join(got, " ") != c.want {
			t.Errorf("pager(%d, 50, %d) = %d %q, want %d %q", c.items, c.current, page, strings.Join(got, " "), c.page, c.want)
		}
	}
}

// syntheticSnapshot is names names (each also a vhost) in envs envs: the
// default env runs an app for every name, and each other env its own app
// for one name in envs.
func syntheticSnapshot(t testing.TB, names, envs int) *catalog.Snapshot {
	t.Helper()
	p := mustPolicy(t, catalog.PolicyConfig{Fallback: []catalog.FallbackRule{{Pattern: "feature-*", Parent: "integration"}}})
	var apps []catalog.App
	add := func(id, env, name string, ip netip.Addr) {
		a := app(id, env, ip.String(), name+":8080")
		a.Labels["OAK_NAMES"] = name
		apps = append(apps, a)
	}
	for n := range names {
		name := fmt.Sprintf("app%05d.example.com", n)
		add(fmt.Sprintf("/integration/app%05d", n), "", name, netip.AddrFrom4([4]byte{10, 1, byte(n / 250), byte(n%250 + 1)}))
		for e := 1; e < envs; e++ {
			if n%envs == e {
				add(fmt.Sprintf("/feature-%03d/app%05d", e, n), fmt.Sprintf("feature-%03d", e), name, netip.AddrFrom4([4]byte{10, byte(2 + e/250), byte(n / 250), byte(n%250 + 1)}))
			}
		}
	}
	return catalog.Build(p, apps)
}

// FuzzStatusQuery: any query string gives the page a 200, 400 or 404 and
// no markup but the template's; a query that parses comes back the same
// from the page's own links.
func FuzzStatusQuery(f *testing.F) {
	for _, seed := range []string{"", "q=redis&env=feature-*,integration&page=2&cols=1", "name=db1.db.example.com", "env=%5B", "q=%3Cscript%3E&page=-1", "env=a,,b&cols=99"} {
		f.Add(seed)
	}
	ctl := statusController(f, seedSnapshot(f, "<script>x</script>"), nil)
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseStatusQuery(values)
		resp, body := getStatus(t, ctl, "/?"+values.Encode())
		switch {
		case err != nil:
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%q: %v, yet %d", raw, err, resp.StatusCode)
			}
			return
		case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound:
			t.Fatalf("%q: %d %s", raw, resp.StatusCode, body)
		case strings.Contains(body, "<script"):
			t.Fatalf("%q: markup in the page", raw)
		}
		link, err := url.Parse(q.link(q.Page, q.Cols, ""))
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseStatusQuery(link.Query())
		if err != nil || again.Text != q.Text || !slices.Equal(again.Patterns, q.Patterns) || again.Page != q.Page || again.Cols != q.Cols {
			t.Fatalf("%q: parsed %+v, its link %s parses as %+v %v", raw, q, link, again, err)
		}
	})
}

// TestStatusBeforeAView: before the first sync the page says so.
func TestStatusBeforeAView(t *testing.T) {
	ctl, err := New(Options{Source: &WatcherSource{Source: &fakeWatcher{}}, Applier: &fakeApplier{}, Render: testOpts})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := getStatus(t, ctl, "/")
	if resp.StatusCode != 200 || !strings.Contains(body, "No view of Marathon yet") || !strings.Contains(body, "no IP pool configured") {
		t.Errorf("/ before a view: %d\n%s", resp.StatusCode, body)
	}
}
