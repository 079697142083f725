package nginxctl

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Register adds the controller's HTTP API to mux: the status page (/),
// /healthz, /metrics, /v1/views and /v1/rejections. Other parts of the
// binary (the IP pool) register on the same mux.
func (c *Controller) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", c.serveStatus)
	mux.HandleFunc("GET /healthz", c.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/views", c.serveView)
	mux.HandleFunc("GET /v1/rejections", c.serveRejections)
}

// Health returns nil while the last apply succeeded and the view is fresh.
func (c *Controller) Health() error {
	st := c.state.Load()
	if st.applyErr != nil {
		return fmt.Errorf("last apply failed (the config before it is live): %v", st.applyErr)
	}
	synced := c.opts.Source.Synced()
	if synced.IsZero() {
		synced = c.started
	}
	if age := time.Since(synced); age > c.opts.StaleAfter {
		return fmt.Errorf("view of Marathon is stale: last synced %s ago (bound %s)", age.Round(time.Second), c.opts.StaleAfter)
	}
	return nil
}

func (c *Controller) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := c.Health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err)
		return
	}
	st := c.state.Load()
	fmt.Fprintf(w, "ok generation=%s\n", st.generation)
}

// EnvView is what /v1/views returns: what a client of Env gets.
type EnvView struct {
	Env        string      `json:"env"`
	Generation string      `json:"generation"`        // the config Nginx serves
	Note       string      `json:"note,omitempty"`    // why nothing was applied, when so
	VHosts     []VHostView `json:"vhosts"`            // sorted by host
	Names      []NameView  `json:"names"`             // every DNS name any env claims, sorted
	Applied    *time.Time  `json:"applied,omitempty"` // when Generation was verified live
	LastError  string      `json:"last_error,omitempty"`
}

// VHostView is one virtual host of an EnvView.
type VHostView struct {
	Host       string   `json:"host"`
	Kind       string   `json:"kind"` // served or held; hosts absent get 404
	ServingEnv string   `json:"serving_env"`
	Backends   []string `json:"backends,omitempty"` // addr:port
}

// NameView is what a client of some env gets for one DNS name, as the
// DNS plugin answers it: the catalog's decision.
type NameView struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`                  // served, held, foreign (see the catalog's Kind)
	ServingEnv string   `json:"serving_env,omitempty"` // served: the serving env; held: the env that holds it
	Addrs      []string `json:"addrs,omitempty"`
}

// View returns what a client of env ("" = the default env) gets under the
// last sanitized model.
func (c *Controller) View(env string) EnvView {
	st := c.state.Load()
	if env == "" {
		env = st.model.DefaultEnv
	}
	out := EnvView{Env: env, Generation: st.generation, Note: st.note, VHosts: []VHostView{}, Names: []NameView{}}
	if st.snapshot != nil {
		out.Names = namesOf(st.snapshot, env)
	}
	if !st.appliedAt.IsZero() {
		out.Applied = &st.appliedAt
	}
	if st.applyErr != nil {
		out.LastError = st.applyErr.Error()
	}
	for _, r := range st.model.View(env) {
		v := VHostView{Host: r.Host, Kind: "served", ServingEnv: r.Env}
		if r.Held {
			v.Kind = "held"
		}
		for _, b := range r.Backends {
			v.Backends = append(v.Backends, b.String())
		}
		out.VHosts = append(out.VHosts, v)
	}
	return out
}

func (c *Controller) serveView(w http.ResponseWriter, r *http.Request) {
	env := r.URL.Query().Get("env")
	if env != "" {
		if err := checkEnv(env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	writeJSON(w, c.View(env))
}

// Rejections returns what the last sync left out: apps the catalog refused
// and parts of the model that did not validate.
func (c *Controller) Rejections() []Rejection {
	return c.state.Load().rejected
}

func (c *Controller) serveRejections(w http.ResponseWriter, _ *http.Request) {
	out := c.Rejections()
	if out == nil {
		out = []Rejection{}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
