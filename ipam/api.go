package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
)

// Request body limits: an allocation request is one id; an app definition
// with its health checks, env and labels fits easily in 1 MiB.
const (
	maxAllocationBody = 4 << 10
	maxAppBody        = 1 << 20
)

// api serves the pool over HTTP.
type api struct {
	pool     *Pool
	marathon marathon.Marathon // nil: POST /v1/apps answers 503
	policy   *catalog.Policy   // nil: deploys do not check labels
	token    TokenSource
	log      *slog.Logger
}

// NewAPI serves the pool:
//
//	POST   /v1/allocations {"app": "/team/app1"}  the app's address (201 new, 200 its own)
//	GET    /v1/allocations[?state=allocated|cooling|all]
//	GET    /v1/allocations/{app...}
//	DELETE /v1/allocations/{app...}                 release into cooldown
//	GET    /v1/pools
//	POST   /v1/apps[?force=true]                    deploy a Marathon app on its address
//
// Mutations need "Authorization: Bearer <token>". client may be nil (no
// deploys); build it with NewMarathonClient so that deploys can disable
// Marathon's unreachable strategy. A deploy of an app that policy would
// leave out of DNS and Nginx (catalog.Policy.Check) is refused; policy may
// be nil (no check). Errors are JSON {"error": "..."}.
func NewAPI(pool *Pool, client marathon.Marathon, policy *catalog.Policy, token TokenSource, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	a := &api{pool: pool, marathon: client, policy: policy, token: token, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/allocations", a.mutation(a.allocate))
	mux.HandleFunc("GET /v1/allocations", a.list)
	mux.HandleFunc("GET /v1/allocations/{app...}", a.get)
	mux.HandleFunc("DELETE /v1/allocations/{app...}", a.mutation(a.release))
	mux.HandleFunc("GET /v1/pools", a.pools)
	mux.HandleFunc("POST /v1/apps", a.mutation(a.deploy))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.noRoute(mux, w, r) })
	return cleanPaths(a, mux)
}

// cleanPaths refuses a path that is not clean ("..", ".", "//") instead of
// redirecting to the cleaned one, which for a DELETE would be another app.
func cleanPaths(a *api, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || path.Clean(p) != p && path.Clean(p)+"/" != p {
			a.writeError(w, r, fail(http.StatusBadRequest, "path %q is not clean", p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noRoute answers a request no route takes: 405 with Allow when the path
// has routes for other methods, else 404.
func (a *api) noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		a.writeError(w, r, fail(http.StatusNotFound, "no such endpoint: %s", r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	a.writeError(w, r, fail(http.StatusMethodNotAllowed, "%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func fail(status int, format string, args ...any) error {
	return &httpError{status, fmt.Errorf(format, args...)}
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, ErrExhausted):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrRebuilding), errors.Is(err, ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 && status != http.StatusInsufficientStorage {
		a.log.Error("ipam api", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// mutation checks the bearer token before h runs.
func (a *api) mutation(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := authorize(r, a.token); err != nil {
			if !errors.Is(err, errUnauthorized) {
				a.writeError(w, r, fail(http.StatusInternalServerError, "%v", err))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="oak-ipam"`)
			a.writeError(w, r, fail(http.StatusUnauthorized, "%v", err))
			return
		}
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	}
}

// limitBody caps r's body at limit bytes; reading more fails with an
// *http.MaxBytesError.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) io.Reader {
	return http.MaxBytesReader(w, r.Body, limit)
}

// decodeStrict reads one JSON object into v, refusing unknown fields and
// trailing data.
func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fail(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	return fail(http.StatusBadRequest, "request body: %v", err)
}

// AllocationRequest is the body of POST /v1/allocations.
type AllocationRequest struct {
	App string `json:"app"`
}

// DecodeAllocationRequest parses a POST /v1/allocations body strictly and
// returns the app id in absolute form.
func DecodeAllocationRequest(body io.Reader) (string, error) {
	var req AllocationRequest
	if err := decodeStrict(body, &req); err != nil {
		return "", err
	}
	app, err := ParseAppID(req.App)
	if err != nil {
		return "", fail(http.StatusBadRequest, "%v", err)
	}
	return app, nil
}

// allocationJSON is an Allocation as the API shows it.
type allocationJSON struct {
	App      string     `json:"app,omitempty"`
	Address  netip.Addr `json:"address"`
	State    State      `json:"state"`
	Since    time.Time  `json:"since"`
	Until    *time.Time `json:"until,omitempty"`
	Deployed bool       `json:"deployed"`
	Result   Result     `json:"result,omitempty"`
}

func toJSON(a Allocation, r Result) allocationJSON {
	out := allocationJSON{App: a.App, Address: a.Addr, State: a.State, Since: a.Since, Deployed: a.Deployed, Result: r}
	if a.State == Cooling {
		out.Until = &a.Until
	}
	return out
}

func (a *api) allocate(w http.ResponseWriter, r *http.Request) error {
	app, err := DecodeAllocationRequest(limitBody(w, r, maxAllocationBody))
	if err != nil {
		return err
	}
	alloc, result, err := a.pool.Allocate(r.Context(), app)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if result != ResultExisting {
		status = http.StatusCreated
	}
	writeJSON(w, status, toJSON(alloc, result))
	return nil
}

// pathApp is the app id of a /v1/allocations/{app...} path.
func pathApp(r *http.Request) (string, error) {
	app, err := ParseAppID(r.PathValue("app"))
	if err != nil {
		return "", fail(http.StatusBadRequest, "%v", err)
	}
	return app, nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	state := State(r.URL.Query().Get("state"))
	switch state {
	case "":
		state = Allocated
	case "all":
		state = ""
	case Allocated, Cooling:
	default:
		a.writeError(w, r, fail(http.StatusBadRequest, "state %q: want allocated, cooling or all", state))
		return
	}
	out := []allocationJSON{}
	for _, alloc := range a.pool.List(state) {
		out = append(out, toJSON(alloc, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	app, err := pathApp(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	alloc, ok := a.pool.Get(app)
	if !ok {
		a.writeError(w, r, fmt.Errorf("%s: %w", app, ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, toJSON(alloc, ""))
}

func (a *api) release(w http.ResponseWriter, r *http.Request) error {
	app, err := pathApp(r)
	if err != nil {
		return err
	}
	if err := a.stillInMarathon(app); err != nil {
		return err
	}
	alloc, err := a.pool.Release(r.Context(), app)
	if err != nil {
		return fmt.Errorf("%s: %w", app, err)
	}
	a.log.Info("ipam: released", "app", app, "addr", alloc.Addr, "until", alloc.Until)
	writeJSON(w, http.StatusOK, toJSON(alloc, ""))
	return nil
}

// stillInMarathon refuses to release the address of an app Marathon still
// has: its container may run on it.
func (a *api) stillInMarathon(app string) error {
	if a.marathon == nil {
		return nil
	}
	_, err := a.marathon.Application(app)
	var apiErr *marathon.APIError
	switch {
	case err == nil:
		return fail(http.StatusConflict, "%s still exists in Marathon; destroy it there first, then release its address", app)
	case errors.As(err, &apiErr) && apiErr.ErrCode == marathon.ErrCodeNotFound:
		return nil
	}
	return fail(http.StatusBadGateway, "cannot ask Marathon whether %s still exists: %v", app, err)
}

// poolJSON is one pool as GET /v1/pools shows it.
type poolJSON struct {
	Network    string        `json:"network"`
	Bridge     string        `json:"bridge"`
	Subnet     netip.Prefix  `json:"subnet"`
	Gateway    netip.Addr    `json:"gateway"`
	IPRange    *netip.Prefix `json:"ipRange,omitempty"`
	Cooldown   string        `json:"cooldown"`
	Grace      string        `json:"grace"`
	Size       int           `json:"size"`
	Allocated  int           `json:"allocated"`
	Cooling    int           `json:"cooling"`
	Free       int           `json:"free"`
	Rebuilding bool          `json:"rebuilding"`
	Conflicts  []Conflict    `json:"conflicts"`
}

func (a *api) pools(w http.ResponseWriter, r *http.Request) {
	cfg, s := a.pool.Config(), a.pool.Stats()
	p := poolJSON{
		Network: cfg.Network, Bridge: cfg.Bridge, Subnet: cfg.Subnet, Gateway: cfg.Gateway,
		Cooldown: cfg.Cooldown.String(), Grace: cfg.Grace.String(),
		Size: s.Size, Allocated: s.Allocated, Cooling: s.Cooling, Free: s.Free,
		Rebuilding: s.Rebuilding, Conflicts: s.Conflicts,
	}
	if cfg.DockerRange.IsValid() {
		p.IPRange = &cfg.DockerRange
	}
	if p.Conflicts == nil {
		p.Conflicts = []Conflict{}
	}
	writeJSON(w, http.StatusOK, []poolJSON{p})
}
