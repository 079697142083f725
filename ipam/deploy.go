package ipam

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
)

// AppDefinition is a Marathon app definition as POST /v1/apps takes it:
// go-marathon's Application, plus unreachableStrategy, which go-marathon
// v0.7.1 cannot carry (NewMarathonClient's transport sets it).
type AppDefinition struct {
	marathon.Application
	UnreachableStrategy json.RawMessage `json:"unreachableStrategy,omitempty"`
}

// DecodeAppDefinition parses a POST /v1/apps body strictly (a field
// go-marathon would drop is refused, not lost) and checks what a fixed
// address needs: an app id, at most one instance, an upgrade strategy that
// never runs two tasks at once, unreachableStrategy "disabled", a Docker
// container not on the host network, and no other network (cfg's) in its
// parameters. It fills in what is missing; setAddress adds the address.
func DecodeAppDefinition(body io.Reader, cfg Config) (*AppDefinition, error) {
	var def AppDefinition
	if err := decodeStrict(body, &def); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			err = fail(statusOf(err), "%v (only fields go-marathon v0.7.1 carries to Marathon are taken, so none is lost)", err)
		}
		return nil, err
	}
	bad := func(format string, args ...any) (*AppDefinition, error) {
		return nil, fail(http.StatusBadRequest, format, args...)
	}
	id, err := ParseAppID(def.ID)
	if err != nil {
		return bad("id: %v", err)
	}
	def.ID = id
	if def.Version != "" {
		return bad("version: not allowed (Marathon would roll the app back to it)")
	}
	if len(def.Tasks) > 0 || len(def.Deployments) > 0 || def.TasksRunning+def.TasksStaged+def.TasksHealthy+def.TasksUnhealthy > 0 || def.TaskStats != nil || def.LastTaskFailure != nil || def.VersionInfo != nil {
		return bad("tasks, deployments, task counts, versionInfo and lastTaskFailure are Marathon's read-only fields; leave them out")
	}
	switch {
	case def.Instances == nil:
		one := 1
		def.Instances = &one
	case *def.Instances > 1 || *def.Instances < 0:
		return bad("instances: %d; an app on a fixed address runs 0 or 1 instance", *def.Instances)
	}
	zero := 0.0
	if def.UpgradeStrategy == nil {
		def.UpgradeStrategy = &marathon.UpgradeStrategy{}
	}
	for name, v := range map[string]**float64{"minimumHealthCapacity": &def.UpgradeStrategy.MinimumHealthCapacity, "maximumOverCapacity": &def.UpgradeStrategy.MaximumOverCapacity} {
		if *v == nil {
			*v = &zero
		} else if **v != 0 {
			return bad("upgradeStrategy.%s: %g; it must be 0, or an upgrade starts a second task on the same address", name, **v)
		}
	}
	if len(def.UnreachableStrategy) > 0 && string(bytes.TrimSpace(def.UnreachableStrategy)) != `"disabled"` {
		return bad(`unreachableStrategy: must be "disabled", or Marathon replaces an unreachable task with a second one on the same address`)
	}
	def.UnreachableStrategy = json.RawMessage(`"disabled"`)
	c := def.Container
	if c == nil || c.Docker == nil {
		return bad("container.docker: required; the address is given to Docker")
	}
	if c.Type == "" {
		c.Type = "DOCKER"
	} else if c.Type != "DOCKER" {
		return bad("container.type: %q; the address needs a DOCKER container", c.Type)
	}
	switch strings.ToUpper(c.Docker.Network) {
	case "":
		c.Docker.Network = "BRIDGE"
	case "HOST", "NONE":
		return bad("container.docker.network: %s has no address of its own", c.Docker.Network)
	}
	if c.Docker.Parameters != nil {
		for _, p := range *c.Docker.Parameters {
			if (p.Key == "net" || p.Key == "network") && p.Value != cfg.Network {
				return bad("docker parameter %s=%s: the pool's network is %s", p.Key, p.Value, cfg.Network)
			}
		}
	}
	return &def, nil
}

// setAddress gives the app its address: Docker parameters net and ip (replacing
// any of theirs; given values must agree) and the address label.
func (def *AppDefinition) setAddress(cfg Config, alloc Allocation) error {
	var params []marathon.Parameters
	if def.Container.Docker.Parameters != nil {
		for _, p := range *def.Container.Docker.Parameters {
			switch p.Key {
			case "ip":
				if p.Value != alloc.Addr.String() {
					return fail(http.StatusConflict, "the definition asks for ip %s but the pool holds %s for %s", p.Value, alloc.Addr, def.ID)
				}
				continue
			case "net", "network":
				continue
			}
			params = append(params, p)
		}
	}
	params = append(params, marathon.Parameters{Key: "net", Value: cfg.Network}, marathon.Parameters{Key: "ip", Value: alloc.Addr.String()})
	def.Container.Docker.Parameters = &params
	labels := map[string]string{}
	if def.Labels != nil {
		labels = *def.Labels
	}
	if v, ok := labels[cfg.IPLabel]; ok && v != alloc.Addr.String() {
		return fail(http.StatusConflict, "label %s=%s, but the pool holds %s for %s", cfg.IPLabel, v, alloc.Addr, def.ID)
	}
	labels[cfg.IPLabel] = alloc.Addr.String()
	def.Labels = &labels
	return nil
}

// check refuses an app that the catalog would leave out of DNS and Nginx
// (catalog.Policy.Check: its labels, and its address against the Docker ip
// parameter and the policy), so that a mistyped label fails the deploy
// instead of leaving a running app that nothing resolves. Before the
// address is set (addressed false) a refusal is the client's; after, it is
// this server's: its pool handed out an address its own policy refuses.
func (a *api) check(def *AppDefinition, addressed bool) error {
	if a.policy == nil {
		return nil
	}
	app := catalog.App{ID: def.ID, DockerIP: dockerIP(&def.Application)}
	if def.Labels != nil {
		app.Labels = *def.Labels
	}
	r := a.policy.Check(&app)
	switch {
	case r == nil:
		return nil
	case addressed:
		return fail(http.StatusInternalServerError, "the pool's address for %s is refused by the DNS policy (label %s=%q: %s): the pool's subnet and the policy's ip_pool or ip_allow disagree",
			def.ID, r.Label, r.Value, r.Reason)
	}
	return fail(http.StatusBadRequest, "label %s=%q: %s (oak would leave the app out of DNS and Nginx)", r.Label, r.Value, r.Reason)
}

// deployJSON answers POST /v1/apps.
type deployJSON struct {
	allocationJSON
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

func (a *api) deploy(w http.ResponseWriter, r *http.Request) error {
	if a.marathon == nil {
		return fail(http.StatusServiceUnavailable, "this server has no Marathon client; deploys are off")
	}
	def, err := DecodeAppDefinition(limitBody(w, r, maxAppBody), a.pool.Config())
	if err != nil {
		return err
	}
	if err := a.check(def, false); err != nil {
		return err
	}
	alloc, result, err := a.pool.Allocate(r.Context(), def.ID)
	if err != nil {
		return err
	}
	if err := def.setAddress(a.pool.Config(), alloc); err != nil {
		return a.undo(r, def.ID, result, err, true)
	}
	if err := a.check(def, true); err != nil {
		a.log.Error("ipam: the policy refuses an address of the pool", "app", def.ID, "addr", alloc.Addr, "err", err)
		return a.undo(r, def.ID, result, err, true)
	}
	dep, err := a.marathon.UpdateApplication(&def.Application, r.URL.Query().Get("force") == "true")
	if err != nil {
		refused, err := marathonError(def.ID, err)
		return a.undo(r, def.ID, result, err, refused)
	}
	a.log.Info("ipam: deployed", "app", def.ID, "addr", alloc.Addr, "result", result, "deployment", dep.DeploymentID)
	writeJSON(w, http.StatusOK, deployJSON{toJSON(alloc, result), dep.DeploymentID, dep.Version})
	return nil
}

// undo releases an allocation this request made when Marathon surely did
// not take the app (refused: not a timeout), and returns err.
func (a *api) undo(r *http.Request, app string, result Result, err error, refused bool) error {
	if result == ResultExisting || !refused {
		return err
	}
	if _, rerr := a.pool.Release(r.Context(), app); rerr != nil {
		a.log.Error("ipam: cannot release the allocation of a refused deploy", "app", app, "err", rerr)
	}
	return err
}

// marathonError maps Marathon's answer to ours, and says whether Marathon
// refused the app (a 4xx) rather than failed to answer (the outcome is
// unknown).
func marathonError(app string, err error) (refused bool, _ error) {
	var apiErr *marathon.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrCode {
		case marathon.ErrCodeBadRequest, marathon.ErrCodeInvalidBean:
			return true, fail(http.StatusBadRequest, "Marathon refused %s: %v", app, err)
		case marathon.ErrCodeAppLocked, marathon.ErrCodeDuplicateID:
			return true, fail(http.StatusConflict, "Marathon refused %s: %v (a deployment holds it; retry later or with ?force=true)", app, err)
		case marathon.ErrCodeUnauthorized, marathon.ErrCodeForbidden, marathon.ErrCodeNotFound:
			return true, fail(http.StatusBadGateway, "Marathon refused this server's request for %s: %v", app, err)
		}
	}
	return false, fail(http.StatusBadGateway, "cannot deploy %s on Marathon: %v", app, err)
}

// NewMarathonClient is go-marathon's client whose app creates and updates
// also carry "unreachableStrategy": "disabled" when they set the address
// label (go-marathon v0.7.1 has no field for it): without it Marathon 1.4
// starts a second task, on the same address, for one that is unreachable.
func NewMarathonClient(cfg marathon.Config, ipLabel string) (marathon.Marathon, error) {
	hc := http.DefaultClient
	if cfg.HTTPClient != nil {
		hc = cfg.HTTPClient
	}
	wrapped := *hc
	base := wrapped.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wrapped.Transport = unreachableDisabler{base: base, label: ipLabel}
	cfg.HTTPClient = &wrapped
	return marathon.NewClient(cfg)
}

type unreachableDisabler struct {
	base  http.RoundTripper
	label string
}

func (t unreachableDisabler) RoundTrip(r *http.Request) (*http.Response, error) {
	if (r.Method != http.MethodPut && r.Method != http.MethodPost) || r.Body == nil || !strings.Contains(r.URL.Path, "/v2/apps") {
		return t.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	body = disableUnreachable(body, t.label)
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return t.base.RoundTrip(out)
}

// disableUnreachable adds the setting to an app body that has the address
// label; any other body is returned as it is.
func disableUnreachable(body []byte, label string) []byte {
	var app map[string]json.RawMessage
	if json.Unmarshal(body, &app) != nil {
		return body
	}
	var labels map[string]string
	if json.Unmarshal(app["labels"], &labels) != nil || labels[label] == "" {
		return body
	}
	app["unreachableStrategy"] = json.RawMessage(`"disabled"`)
	out, err := json.Marshal(app)
	if err != nil {
		return body
	}
	return out
}
