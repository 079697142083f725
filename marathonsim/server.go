package marathonsim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a simulated Marathon master. It is an http.Handler; serve it
// with net/http or httptest. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Server starts

	events    *broker
	faults    faultState
	fullLists atomic.Int64   // see Stats
	docker    *dockerRuntime // nil unless Options.Docker: tasks are data only

	mu          sync.Mutex
	closed      bool
	apps        map[string]*app
	sortedIDs   []string           // ids of apps, sorted; nil when stale
	tree        json.RawMessage    // root group of apps for plans; nil when stale
	tasks       map[string][]*task // by app id; outlives a deleted app until killed
	deployments map[string]*deployment
	locks       map[string]*deployment // app id -> running deployment
	changed     chan struct{}          // closed and replaced on every change
	baseline    []byte                 // apps body Reset returns to
	leases      map[netip.Addr]bool
	nextLease   netip.Addr
	nextService int
	nextHost    int
	lastVersion time.Time
	pending     int    // replacements waiting for their backoff
	generation  uint64 // bumped by Reset, so stale timers do nothing
}

// New returns a running simulator. It panics when opts.Apps does not parse
// or opts.PlanGroups is not a known value.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	if opts.PlanGroups != PlanGroupsFull && opts.PlanGroups != PlanGroupsAffected {
		panic("marathonsim: Options.PlanGroups: unknown value " + strconv.Quote(opts.PlanGroups))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		ctx:    ctx,
		cancel: cancel,
		events: newBroker(opts.EventBuffer),
	}
	if opts.Docker != nil {
		s.docker = newDockerRuntime(opts.Docker)
		if n, err := s.docker.removeAll(); err != nil {
			s.log.Error("removing containers left by an earlier run", "owner", s.docker.owner, "err", err)
		} else if n > 0 {
			s.log.Info("removed containers left by an earlier run", "owner", s.docker.owner, "containers", n)
		}
	}
	s.resetLocked()
	if opts.Apps != nil {
		if err := s.LoadApps(opts.Apps); err != nil {
			panic("marathonsim: Options.Apps: " + err.Error())
		}
	}
	return s
}

// Close stops every deployment, task timer and event stream, and waits for
// their goroutines. Requests after Close get 503. Close is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, d := range s.deployments {
		d.cancel()
	}
	s.mu.Unlock()
	s.cancel()
	s.events.dropAll()
	s.wg.Wait()
	if s.docker != nil {
		// Each task's goroutine removed its container; this catches any
		// that a failed removal left.
		if _, err := s.docker.removeAll(); err != nil {
			s.log.Error("removing containers", "owner", s.docker.owner, "err", err)
		}
	}
}

// goLocked starts fn in a goroutine that Close waits for. s.mu must be held.
// It reports false, starting nothing, once the Server is closed.
func (s *Server) goLocked(fn func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// notifyLocked wakes everything waiting for a state change. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nowVersion returns a version timestamp strictly after the previous one.
// s.mu must be held.
func (s *Server) nowVersion() string {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(s.lastVersion) {
		now = s.lastVersion.Add(time.Millisecond)
	}
	s.lastVersion = now
	return timestamp(now)
}

// ServeHTTP routes a request like Marathon's HTTP layer: double slashes and
// a DC/OS "/marathon" prefix are accepted, only /_sim/ needs no auth.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := cleanPath(r.URL.Path)
	if strings.HasPrefix(path, "/_sim/") {
		s.serveAdmin(w, r, strings.TrimPrefix(path, "/_sim/"))
		return
	}
	if s.ctx.Err() != nil {
		writeMessage(w, http.StatusServiceUnavailable, "simulator closed")
		return
	}
	if path == "/v2/events" {
		if s.challenge(w, r) {
			return
		}
		s.serveEvents(w, r)
		return
	}
	if !s.faults.delayRequest(r.Context()) {
		return
	}
	if status, fail := s.faults.failRequest(path == "/ping"); fail {
		s.log.Info("injected REST failure", "method", r.Method, "path", path, "status", status)
		writeMessage(w, status, "simulated failure (marathonsim fail-rest)")
		return
	}
	if s.challenge(w, r) {
		return
	}
	if path == "/ping" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("pong"))
		return
	}
	s.route(w, r, path)
}

// challenge answers 401 with an authentication challenge, as Marathon's
// --http_credentials filter (realm "Mesosphere", its --http_realm default)
// or DC/OS's admin router do, when r lacks the credentials Options ask for.
// It reports whether it answered.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) bool {
	if s.authorized(r) {
		return false
	}
	if s.opts.User != "" && s.opts.Password != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere"`)
	} else {
		w.Header().Set("WWW-Authenticate", "acsjwt")
	}
	writeMessage(w, http.StatusUnauthorized, "invalid username or password")
	return true
}

// route dispatches the /v2 API.
func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case path == "/v2/leader":
		s.serveLeader(w, r)
	case path == "/v2/info":
		s.serveInfo(w, r)
	case path == "/v2/apps":
		switch r.Method {
		case http.MethodGet:
			s.listApps(w, r)
		case http.MethodPost:
			s.createApp(w, r)
		case http.MethodPut, http.MethodPatch:
			s.updateApps(w, r)
		default:
			methodNotAllowed(w)
		}
	case strings.HasPrefix(path, "/v2/apps/"):
		s.routeApp(w, r, strings.TrimPrefix(path, "/v2/apps"))
	case path == "/v2/tasks":
		if r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		s.listTasks(w, r)
	case path == "/v2/tasks/delete":
		if r.Method != http.MethodPost {
			methodNotAllowed(w)
			return
		}
		s.deleteTasks(w, r)
	case path == "/v2/deployments":
		if r.Method != http.MethodGet {
			methodNotAllowed(w)
			return
		}
		s.listDeployments(w)
	case strings.HasPrefix(path, "/v2/deployments/"):
		if r.Method != http.MethodDelete {
			methodNotAllowed(w)
			return
		}
		s.deleteDeployment(w, r, strings.TrimPrefix(path, "/v2/deployments/"))
	default:
		writeMessage(w, http.StatusNotFound, "not found")
	}
}

// routeApp dispatches /v2/apps/{id}[/restart|/tasks[/{taskId}]|/versions[/{v}]].
func (s *Server) routeApp(w http.ResponseWriter, r *http.Request, rest string) {
	segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	n := len(segs)
	id := func(k int) string { return normalizeID(strings.Join(segs[:n-k], "/")) }
	switch {
	case n >= 2 && segs[n-1] == "restart" && r.Method == http.MethodPost:
		s.restartApp(w, r, id(1))
	case n >= 2 && segs[n-1] == "tasks":
		switch r.Method {
		case http.MethodGet:
			s.appTasks(w, id(1))
		case http.MethodDelete:
			s.killAppTasks(w, r, id(1))
		default:
			methodNotAllowed(w)
		}
	case n >= 3 && segs[n-2] == "tasks" && r.Method == http.MethodDelete:
		s.killOneTask(w, r, id(2), segs[n-1])
	case n >= 2 && segs[n-1] == "versions" && r.Method == http.MethodGet:
		s.appVersions(w, id(1))
	case n >= 3 && segs[n-2] == "versions" && r.Method == http.MethodGet:
		s.appAtVersion(w, id(2), segs[n-1])
	default:
		switch r.Method {
		case http.MethodGet:
			s.getApp(w, r, id(0))
		case http.MethodPut, http.MethodPatch:
			s.updateApp(w, r, id(0))
		case http.MethodDelete:
			s.deleteApp(w, r, id(0))
		default:
			methodNotAllowed(w)
		}
	}
}

func (s *Server) serveLeader(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"leader": s.leader(r)})
	case http.MethodDelete:
		writeMessage(w, http.StatusOK, "Leadership abdicated")
	default:
		methodNotAllowed(w)
	}
}

func (s *Server) leader(r *http.Request) string {
	if s.opts.Leader != "" {
		return s.opts.Leader
	}
	return r.Host
}

// serveInfo answers GET /v2/info with a minimal Marathon 1.4 info object.
func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request) {
	leader := s.leader(r)
	host, _, _ := strings.Cut(leader, ":")
	writeJSON(w, http.StatusOK, map[string]any{
		"name":             "marathon",
		"version":          "1.4.13",
		"buildref":         "marathonsim",
		"elected":          true,
		"leader":           leader,
		"frameworkId":      "marathonsim-0000",
		"event_subscriber": map[string]any{"type": "sse", "http_endpoints": []string{}},
		"http_config":      map[string]any{"http_port": 8080, "https_port": 8443},
		"marathon_config": map[string]any{
			"checkpoint": true, "executor": "//cmd", "failover_timeout": 604800,
			"framework_name": "marathon", "ha": true, "hostname": host,
			"local_port_max": 20000, "local_port_min": 10000, "master": "local",
			"mesos_role": nil, "mesos_user": "root", "webui_url": nil,
			"task_launch_timeout": 300000, "task_reservation_timeout": 20000,
		},
		"zookeeper_config": map[string]any{"zk": "zk://localhost:2181/marathon", "zk_timeout": 10000},
	})
}

// authorized checks basic auth or a DC/OS token when Options ask for them.
func (s *Server) authorized(r *http.Request) bool {
	needBasic := s.opts.User != "" && s.opts.Password != ""
	if !needBasic && s.opts.Token == "" {
		return true
	}
	if needBasic {
		if u, p, ok := r.BasicAuth(); ok &&
			subtle.ConstantTimeCompare([]byte(u), []byte(s.opts.User)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(s.opts.Password)) == 1 {
			return true
		}
	}
	if s.opts.Token != "" {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "token="); ok &&
			subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) == 1 {
			return true
		}
	}
	return false
}

// cleanPath collapses repeated slashes, drops a trailing slash and the DC/OS
// "/marathon" prefix.
func cleanPath(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if rest, ok := strings.CutPrefix(p, "/marathon/"); ok {
		p = "/" + rest
	}
	return p
}

// detail is one entry of Marathon's validation error details.
type detail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// apiError is an error answer: status plus Marathon's JSON body.
type apiError struct {
	status int
	body   any
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %v", e.status, e.body) }

func notFound(id string) *apiError {
	return &apiError{http.StatusNotFound, map[string]string{"message": fmt.Sprintf("App '%s' does not exist", id)}}
}

func invalid(path, msg string) *apiError {
	return &apiError{422, map[string]any{"message": "Object is not valid", "details": []detail{{Path: path, Errors: []string{msg}}}}}
}

func badJSON(path, msg string) *apiError {
	return &apiError{http.StatusBadRequest, map[string]any{"message": "Invalid JSON", "details": []detail{{Path: path, Errors: []string{msg}}}}}
}

func locked(d *deployment) *apiError {
	return &apiError{http.StatusConflict, map[string]any{
		"message":     fmt.Sprintf("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/%s'.", d.id),
		"deployments": []map[string]string{{"id": d.id}},
	}}
}

func writeError(w http.ResponseWriter, err *apiError) { writeJSON(w, err.status, err.body) }

func writeJSON(w http.ResponseWriter, status int, body any) {
	out, err := json.Marshal(body)
	if err != nil {
		status, out = http.StatusInternalServerError, []byte(`{"message":"marshal error"}`)
	}
	writeRaw(w, status, out)
}

// writeRaw answers with a JSON body that is already encoded.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func methodNotAllowed(w http.ResponseWriter) {
	writeMessage(w, http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed")
}

// forced reports a true ?force= query parameter.
func forced(r *http.Request) bool { return r.URL.Query().Get("force") == "true" }
