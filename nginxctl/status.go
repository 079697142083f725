package nginxctl

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/ipam"
)

// The status page (GET /): what each env sees, read from the same state as
// /v1/views. The catalog decides every cell; this file only lays its
// answers out, a page at a time.

// PoolStats is the IP pool as the status page shows it; *ipam.Pool is one.
type PoolStats interface {
	Stats() ipam.Stats
}

// Bounds that keep a page small whatever the cluster's size.
const (
	statusRowsPerPage = 50  // matrix rows (names and vhosts)
	statusEnvsPerPage = 10  // matrix columns, and env sections
	statusListMax     = 100 // rejections and conflicts
	statusEnvListMax  = 20  // apps, client addresses and conflicts in an env's section
	statusBackendsMax = 8   // backends in a cell's tooltip
	statusQueryMax    = 253 // bytes of a text filter or a name
	statusPatternsMax = 16  // env patterns in one filter
)

//go:embed status.tmpl
var statusTemplateText string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago":  ago,
	"join": strings.Join,
}).Parse(statusTemplateText))

// statusQuery is the page's parsed query string.
type statusQuery struct {
	Text     string   // q: rows whose name contains it
	Patterns []string // env: comma-separated envs or globs (path.Match), as -fallback writes them
	Page     int      // page: matrix row page, from 1
	Cols     int      // cols: env column page, from 1
	Name     string   // name: the detail view of one name or vhost
}

func parseStatusQuery(v url.Values) (statusQuery, error) {
	q := statusQuery{
		Text: strings.ToLower(strings.TrimSpace(v.Get("q"))),
		Name: strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v.Get("name"))), "."),
		Page: 1, Cols: 1,
	}
	if len(q.Text) > statusQueryMax || len(q.Name) > statusQueryMax {
		return q, fmt.Errorf("q and name are at most %d bytes", statusQueryMax)
	}
	for p := range strings.SplitSeq(v.Get("env"), ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil || len(p) > statusQueryMax {
			return q, fmt.Errorf("env: %q is not an env name or glob", p)
		}
		q.Patterns = append(q.Patterns, p)
	}
	if len(q.Patterns) > statusPatternsMax {
		return q, fmt.Errorf("env: at most %d patterns", statusPatternsMax)
	}
	for _, n := range []struct {
		key string
		to  *int
	}{{"page", &q.Page}, {"cols", &q.Cols}} {
		if s := v.Get(n.key); s != "" {
			i, err := strconv.Atoi(s)
			if err != nil || i < 1 {
				return q, fmt.Errorf("%s: want a page number from 1", n.key)
			}
			*n.to = i
		}
	}
	return q, nil
}

// matches reports whether env passes the env filter.
func (q *statusQuery) matches(env string) bool {
	if len(q.Patterns) == 0 {
		return true
	}
	for _, p := range q.Patterns {
		if ok, _ := path.Match(p, env); ok {
			return true
		}
	}
	return false
}

// link returns the URL of the matrix's page (row page, env column page)
// under q's filters, or of name's detail view when name is not "".
func (q *statusQuery) link(page, cols int, name string) string {
	v := url.Values{}
	if q.Text != "" && name == "" {
		v.Set("q", q.Text)
	}
	if len(q.Patterns) > 0 {
		v.Set("env", strings.Join(q.Patterns, ","))
	}
	if name != "" {
		v.Set("name", name)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if cols > 1 {
		v.Set("cols", strconv.Itoa(cols))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// statusPage is everything the template shows.
type statusPage struct {
	Query         statusQuery
	EnvFilter     string // the env filter as typed
	Now           time.Time
	Health        string // "" when healthy
	Marathon      time.Time
	Synced        time.Time // last sync with a view
	Result        string
	Generation    string
	Applied       time.Time
	LastError     string
	Note          string
	HasView       bool
	DefaultEnv    string
	Stats         catalog.Stats
	Pool          *ipam.Stats // its Conflicts capped at statusListMax
	PoolConflicts int         // all of them

	Envs      []string // the columns of this page
	EnvsTotal int      // envs that pass the filter
	Rows      []statusRow
	RowsTotal int // rows that pass the filter
	RowPages  []pageLink
	ColPages  []pageLink
	EnvInfo   []envStatus

	Rejected      []catalog.Rejection
	RejectedMore  int
	Dropped       []Rejection // parts of the model that did not validate
	DroppedMore   int
	Conflicts     []catalog.AddrConflict
	ConflictsMore int

	Detail *nameDetail
}

// pageLink is one link of a pager.
type pageLink struct {
	Label   string
	URL     string
	Current bool
}

// statusRow is one name or vhost across the page's envs.
type statusRow struct {
	Name  string
	HTTP  bool   // an OAK_HTTP host; else an OAK_NAMES name
	Note  string // e.g. outside the controller's domains
	Link  string
	Cells []statusCell
}

// statusCell is what a client of one env gets for one row.
type statusCell struct {
	Class string // own, fallback, held, absent: the page's colours
	Text  string
	Title string // the decision in words, with the backends
}

// envStatus is one env's section: its chain, apps and clients.
type envStatus struct {
	Env           string
	Chain         []string
	Apps          []string // its apps with a running task
	AppsMore      int
	Clients       []catalog.ClientClaim // addresses its apps place in it
	ClientsMore   int
	CIDRs         []catalog.CIDRRule
	Default       bool                  // every other client falls to it
	Conflicts     []catalog.ClientClaim // default env: addresses in conflict
	ConflictsMore int
}

// nameDetail is the detail view of one name: every env's answer in full.
type nameDetail struct {
	Name           string
	IsName, IsHost bool
	Note           string
	Envs           []detailRow
}

// detailRow is one env's answers for the detail view's name.
type detailRow struct {
	Env       string
	Chain     []string
	DNS, HTTP *detailAnswer
}

// detailAnswer is one answer in full.
type detailAnswer struct {
	Cell     statusCell
	Backends []string
	More     int
	Apps     []string
}

func (c *Controller) serveStatus(w http.ResponseWriter, r *http.Request) {
	q, err := parseStatusQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	page := c.statusPage(q, time.Now())
	code := http.StatusOK
	if page.Detail != nil && !page.Detail.IsName && !page.Detail.IsHost {
		code = http.StatusNotFound
	}
	var body bytes.Buffer
	if err := statusTemplate.Execute(&body, page); err != nil {
		c.log.Error("status page", "err", err)
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The page runs no script and loads nothing: should escaping ever fail,
	// the browser still runs nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_, _ = w.Write(body.Bytes())
}

// statusPage gathers the page for q from the controller's state.
func (c *Controller) statusPage(q statusQuery, now time.Time) *statusPage {
	st := c.state.Load()
	page := &statusPage{
		Query: q, EnvFilter: strings.Join(q.Patterns, ","), Now: now,
		Marathon: c.opts.Source.Synced(), Synced: st.syncedAt, Result: st.result,
		Generation: st.generation, Applied: st.appliedAt, Note: st.note,
		DefaultEnv: st.model.DefaultEnv,
	}
	if err := c.Health(); err != nil {
		page.Health = err.Error()
	}
	if st.applyErr != nil {
		page.LastError = st.applyErr.Error()
	}
	if c.opts.Pool != nil {
		stats := c.opts.Pool.Stats()
		page.PoolConflicts = len(stats.Conflicts)
		stats.Conflicts, _ = capped(stats.Conflicts, statusListMax)
		page.Pool = &stats
	}
	for _, r := range st.rejected {
		if r.Source != "app" { // the catalog's own list below has the label apart
			page.Dropped = append(page.Dropped, r)
		}
	}
	page.Dropped, page.DroppedMore = capped(page.Dropped, statusListMax)
	s := st.snapshot
	if s == nil {
		return page
	}
	page.HasView = true
	page.DefaultEnv = s.Policy().DefaultEnv()
	page.Stats = s.Stats()
	index := st.index()
	page.Rejected, page.RejectedMore = capped(index.rejected, statusListMax)
	page.Conflicts, page.ConflictsMore = capped(index.addrConflicts, statusListMax)
	var envs []string
	for _, env := range index.envs {
		if q.matches(env) {
			envs = append(envs, env)
		}
	}
	if q.Name != "" {
		page.Detail = c.detail(s, index, q.Name, envs)
		return page
	}
	page.EnvsTotal = len(envs)
	var cols int
	cols, page.ColPages = pager(len(envs), statusEnvsPerPage, q.Cols, func(p int) string { return q.link(q.Page, p, "") })
	page.Envs = pageOf(envs, cols, statusEnvsPerPage)

	rows := index.rows
	if q.Text != "" {
		rows = nil
		for _, row := range index.rows {
			if strings.Contains(row.Name, q.Text) {
				rows = append(rows, row)
			}
		}
	}
	page.RowsTotal = len(rows)
	var rowPage int
	rowPage, page.RowPages = pager(len(rows), statusRowsPerPage, q.Page, func(p int) string { return q.link(p, cols, "") })
	for _, row := range pageOf(rows, rowPage, statusRowsPerPage) {
		if row.HTTP && !c.opts.Domains.Contains(row.Name) {
			row.Note = "outside -domains: Nginx answers 404"
		}
		row.Link = q.link(1, 1, row.Name)
		for _, env := range page.Envs {
			row.Cells = append(row.Cells, cellOf(env, resolve(s, env, row.Name, row.HTTP), row.HTTP))
		}
		page.Rows = append(page.Rows, row)
	}
	for _, env := range page.Envs {
		page.EnvInfo = append(page.EnvInfo, envStatusOf(s.Policy(), env, index))
	}
	return page
}

// statusIndex is what every page of one snapshot starts from. It is built
// on the first request after a sync: listing a large cluster's names and
// client addresses costs more than laying out a page.
type statusIndex struct {
	rows          []statusRow // every name and vhost, sorted by name, without cells
	names, hosts  []string    // sorted
	envs          []string    // every env a client can be in or an app runs in, the default env first
	byApp         map[string][]catalog.ClientClaim
	conflicts     []catalog.ClientClaim
	rejected      []catalog.Rejection
	addrConflicts []catalog.AddrConflict
}

// newStatusIndex lists what the pages of s lay out; nil s gives nil.
func newStatusIndex(s *catalog.Snapshot) *statusIndex {
	if s == nil {
		return nil
	}
	x := &statusIndex{names: s.Names(), hosts: s.VHosts(), byApp: map[string][]catalog.ClientClaim{},
		rejected: s.Rejected(), addrConflicts: s.Conflicts()}
	x.rows = make([]statusRow, 0, len(x.names)+len(x.hosts))
	for _, n := range x.names {
		x.rows = append(x.rows, statusRow{Name: n})
	}
	for _, h := range x.hosts {
		x.rows = append(x.rows, statusRow{Name: h, HTTP: true})
	}
	slices.SortStableFunc(x.rows, func(a, b statusRow) int { return strings.Compare(a.Name, b.Name) })

	def := s.Policy().DefaultEnv()
	envs := s.Envs()
	for _, r := range s.Policy().CIDRRules() {
		envs = append(envs, r.Env)
	}
	for _, c := range s.Clients() {
		if c.How == catalog.ByConflict {
			x.conflicts = append(x.conflicts, c)
			continue
		}
		x.byApp[c.Env] = append(x.byApp[c.Env], c)
		envs = append(envs, c.Env)
	}
	envs = slices.DeleteFunc(envs, func(e string) bool { return e == def })
	slices.Sort(envs)
	x.envs = append([]string{def}, slices.Compact(envs)...)
	return x
}

// resolve asks the catalog about a DNS name or a vhost.
func resolve(s *catalog.Snapshot, env, name string, http bool) catalog.Answer {
	if http {
		return s.ResolveVHost(env, name)
	}
	return s.Resolve(env, name)
}

// cellOf lays out the catalog's answer for a client of env.
func cellOf(env string, a catalog.Answer, http bool) statusCell {
	switch a.Kind {
	case catalog.Served:
		backends, more := serviceBackends(a.Service)
		list := strings.Join(backends, " ")
		if more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		if a.Env == env {
			return statusCell{Class: "own", Text: "own", Title: "served by " + env + ": " + list}
		}
		return statusCell{Class: "fallback", Text: "→ " + a.Env, Title: "fallen back to " + a.Env + ": " + list}
	case catalog.Held:
		answer := "DNS answers no address"
		if http {
			answer = "Nginx answers 503"
		}
		text := "held"
		if a.Env != env {
			text = "held by " + a.Env
		}
		return statusCell{Class: "held", Text: text, Title: "claimed by " + a.Env + ", nothing live: " + answer}
	case catalog.Foreign:
		return statusCell{Class: "absent", Text: "—", Title: "foreign: claimed only outside the chain (by " + a.Env + ")"}
	}
	return statusCell{Class: "absent", Text: "—", Title: a.Kind.String()}
}

// serviceBackends lists a service's backends as addr:port, the first
// statusBackendsMax of them, and how many more there are.
func serviceBackends(s *catalog.Service) ([]string, int) {
	var out []string
	n := 0
	for _, b := range s.Backends {
		for _, p := range b.Ports {
			if n++; n <= statusBackendsMax {
				out = append(out, Backend{Addr: b.Addr, Port: p.Number}.String())
			}
		}
		if len(b.Ports) == 0 {
			if n++; n <= statusBackendsMax {
				out = append(out, b.Addr.String())
			}
		}
	}
	return out, n - len(out)
}

// envStatusOf gathers env's section from the catalog's client claims:
// its apps are those whose running tasks' addresses place clients in it.
func envStatusOf(policy *catalog.Policy, env string, index *statusIndex) envStatus {
	out := envStatus{Env: env, Chain: policy.Chain(env), Default: env == policy.DefaultEnv()}
	var apps []string
	for _, c := range index.byApp[env] {
		apps = append(apps, c.Apps...)
	}
	for _, r := range policy.CIDRRules() {
		if r.Env == env {
			out.CIDRs = append(out.CIDRs, r)
		}
	}
	slices.Sort(apps)
	out.Apps, out.AppsMore = capped(slices.Compact(apps), statusEnvListMax)
	out.Clients, out.ClientsMore = capped(index.byApp[env], statusEnvListMax)
	if out.Default {
		out.Conflicts, out.ConflictsMore = capped(index.conflicts, statusEnvListMax)
	}
	return out
}

// detail is the detail view of name for each of envs.
func (c *Controller) detail(s *catalog.Snapshot, index *statusIndex, name string, envs []string) *nameDetail {
	d := &nameDetail{Name: name}
	_, d.IsName = slices.BinarySearch(index.names, name)
	_, d.IsHost = slices.BinarySearch(index.hosts, name)
	if !d.IsName && !d.IsHost {
		return d
	}
	if d.IsHost && !c.opts.Domains.Contains(name) {
		d.Note = "outside -domains: Nginx answers 404 for this host"
	}
	full := func(env string, http bool) *detailAnswer {
		a := resolve(s, env, name, http)
		out := &detailAnswer{Cell: cellOf(env, a, http)}
		if a.Kind == catalog.Served {
			out.Backends, out.More = serviceBackends(a.Service)
			out.Apps = a.Service.Apps
		}
		return out
	}
	for _, env := range envs {
		row := detailRow{Env: env, Chain: s.Policy().Chain(env)}
		if d.IsName {
			row.DNS = full(env, false)
		}
		if d.IsHost {
			row.HTTP = full(env, true)
		}
		d.Envs = append(d.Envs, row)
	}
	return d
}

// pager returns the page to show (current clamped to the pages there are)
// and the links to every page, or none when one page holds everything.
func pager(items, per, current int, link func(page int) string) (int, []pageLink) {
	pages := max(1, (items+per-1)/per)
	current = min(current, pages)
	if pages == 1 {
		return current, nil
	}
	var out []pageLink
	for p := 1; p <= pages; p++ {
		// Long pagers keep the ends and the neighbourhood of the current page.
		if pages > 12 && p > 2 && p < pages-1 && (p < current-2 || p > current+2) {
			if len(out) > 0 && out[len(out)-1].URL != "" {
				out = append(out, pageLink{Label: "…"})
			}
			continue
		}
		out = append(out, pageLink{Label: strconv.Itoa(p), URL: link(p), Current: p == current})
	}
	return current, out
}

func pageOf[T any](items []T, page, per int) []T {
	start := min((page-1)*per, len(items))
	return items[start:min(start+per, len(items))]
}

// capped returns the first n items and how many were left out.
func capped[T any](items []T, n int) ([]T, int) {
	if len(items) <= n {
		return items, 0
	}
	return items[:n], len(items) - n
}

// ago writes how long before now t was, or "never".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return d.Round(time.Second).String() + " ago"
	}
	return d.Round(time.Minute).String() + " ago"
}
