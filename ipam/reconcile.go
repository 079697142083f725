package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// Observed is one Marathon app as a snapshot shows it: its id and the
// address it runs with (invalid when it has none).
type Observed struct {
	App  string
	Addr netip.Addr
}

// Conflict is an address Marathon (or Docker) uses that the pool did not
// give to that app.
type Conflict struct {
	App    string     `json:"app"`
	Addr   netip.Addr `json:"address"`
	Holder string     `json:"holder,omitempty"` // the app the pool gave Addr to
	// Container is the Docker container's name (ScanConflicts only).
	Container string `json:"container,omitempty"`
	Reason    string `json:"reason"`
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s on %s: %s", c.App, c.Addr, c.Reason)
}

// Report is what a Reconcile changed and found.
type Report struct {
	Adopted   []Allocation // addresses Marathon runs that the pool now holds for their app
	Released  []Allocation // allocations whose app was gone for the grace period, now cooling
	Pending   []string     // apps missed once, released if still gone after the grace period
	Conflicts []Conflict
	Rebuilt   bool // the pool was rebuilt from this observation
	Held      int  // rebuild: addresses held in cooldown because nothing accounts for them
}

// Reconcile brings the pool in line with what Marathon runs (observed, seen
// at now). An app on an address the pool does not hold is adopted (and an
// address the pool held for it elsewhere cools down); an app on an address
// the pool gave to another app, or that the pool never hands out, is a
// conflict and nothing changes. A deployed allocation whose app is missing
// is released only when two observations at least Config.Grace apart both
// miss it. A rebuilding pool also holds every address nothing accounts for
// in cooldown, and is complete from then on.
func (p *Pool) Reconcile(observed []Observed, now time.Time) (Report, error) {
	v, err := p.submit(context.Background(), func(w *writeTx) (any, error) {
		w.at = now
		return w.reconcile(observed), nil
	})
	r, _ := v.(Report)
	if err == nil {
		p.logReport(r)
	}
	return r, err
}

func (p *Pool) logReport(r Report) {
	for _, a := range r.Adopted {
		p.log.Info("ipam: adopted an address Marathon runs", "app", a.App, "addr", a.Addr)
	}
	for _, a := range r.Released {
		p.log.Info("ipam: released the address of an app gone from Marathon", "app", a.App, "addr", a.Addr, "until", a.Until)
	}
	for _, c := range r.Conflicts {
		p.log.Warn("ipam: conflict", "app", c.App, "addr", c.Addr, "holder", c.Holder, "reason", c.Reason)
	}
	if r.Rebuilt {
		p.log.Info("ipam: rebuilt from Marathon", "adopted", len(r.Adopted), "held", r.Held, "cooldown", p.cfg.Cooldown)
	}
}

func (w *writeTx) reconcile(observed []Observed) Report {
	var rep Report
	present := make(map[string]bool, len(observed))
	claims := map[netip.Addr][]string{}
	for _, o := range observed {
		if present[o.App] {
			continue // an id is unique in Marathon; the first observation stands
		}
		present[o.App] = true
		if o.Addr.IsValid() {
			claims[o.Addr] = append(claims[o.Addr], o.App)
		}
	}
	addrs := make([]netip.Addr, 0, len(claims))
	for a := range claims {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, addr := range addrs {
		w.settle(addr, claims[addr], &rep)
	}
	w.releaseGone(present, &rep)
	if w.p.rebuilding.Load() {
		for _, a := range w.p.cfg.Addresses() {
			if w.record(a) == nil {
				w.put(&Allocation{Addr: a, State: Cooling, Since: w.at, Until: w.at.Add(w.p.cfg.Cooldown)})
				rep.Held++
			}
		}
		w.complete = w.p.cfg.Subnet
		rep.Rebuilt = true
	}
	conflicts := rep.Conflicts
	w.onCommit = append(w.onCommit, func() { w.p.conflicts.Store(&conflicts) })
	return rep
}

// settle applies what Marathon says about one address, claimed by apps.
func (w *writeTx) settle(addr netip.Addr, apps []string, rep *Report) {
	conflict := func(app, holder, reason string) {
		rep.Conflicts = append(rep.Conflicts, Conflict{App: app, Addr: addr, Holder: holder, Reason: reason})
	}
	if reason := w.p.cfg.Reserved(addr); reason != "" {
		for _, app := range apps {
			conflict(app, "", "the pool never hands out this address: "+reason)
		}
		return
	}
	rec := w.record(addr)
	if rec != nil && rec.State == Allocated {
		for _, app := range apps {
			switch {
			case app != rec.App:
				conflict(app, rec.App, "the pool gave this address to "+rec.App)
			case !rec.Deployed:
				a := *rec
				a.Deployed = true
				w.put(&a)
			}
		}
		return
	}
	if len(apps) > 1 {
		for _, app := range apps {
			conflict(app, "", "Marathon runs "+strings.Join(apps, ", ")+" on this address")
		}
		if rec == nil || !rec.Until.After(w.at) {
			w.put(&Allocation{Addr: addr, State: Cooling, Since: w.at, Until: w.at.Add(w.p.cfg.Cooldown)})
		}
		return
	}
	app := apps[0]
	if held, _ := w.appRecords(app); held != nil {
		w.cool(held, app)
	}
	a := &Allocation{Addr: addr, App: app, State: Allocated, Since: w.at, Deployed: true}
	w.put(a)
	rep.Adopted = append(rep.Adopted, *a)
}

// releaseGone applies the grace rule to deployed allocations whose app is
// not present.
func (w *writeTx) releaseGone(present map[string]bool, rep *Report) {
	var gone []*Allocation
	it, err := w.txn.Get(table, "state", string(Allocated))
	if err == nil {
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if a := obj.(*Allocation); a.Deployed && !present[a.App] {
				gone = append(gone, a)
			}
		}
	}
	missed := make(map[string]bool, len(gone))
	for _, a := range gone {
		missed[a.App] = true
		first, seen := w.p.missing[a.App]
		switch {
		case !seen:
			w.p.missing[a.App] = w.at
			rep.Pending = append(rep.Pending, a.App)
		case w.at.Sub(first) >= w.p.cfg.Grace:
			rep.Released = append(rep.Released, w.cool(a, a.App))
		default:
			rep.Pending = append(rep.Pending, a.App)
		}
	}
	for app := range w.p.missing {
		if !missed[app] {
			delete(w.p.missing, app)
		}
	}
	sort.Strings(rep.Pending)
}

// ObservedFromApps reads each app's address from Marathon: the label
// ipLabel (e.g. OAK_IP), else the Docker parameter "ip". An app whose
// label and parameter disagree, or whose address does not parse, is
// returned with an error and observed without an address (it still
// exists, so its allocation is kept).
func ObservedFromApps(apps []marathon.Application, ipLabel string) ([]Observed, []error) {
	out := make([]Observed, 0, len(apps))
	var errs []error
	for _, app := range apps {
		o := Observed{App: app.ID}
		var label string
		if app.Labels != nil {
			label = (*app.Labels)[ipLabel]
		}
		param := dockerIP(&app)
		switch {
		case label != "" && param != "" && label != param:
			errs = append(errs, fmt.Errorf("app %s: label %s=%q and Docker parameter ip=%q disagree", app.ID, ipLabel, label, param))
		case label != "" || param != "":
			v := label
			if v == "" {
				v = param
			}
			a, err := parseIPv4(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("app %s: %w", app.ID, err))
				break
			}
			o.Addr = a
		}
		out = append(out, o)
	}
	return out, errs
}

// dockerIP returns the value of an app's Docker parameter "ip" (the last
// one, as Docker takes it), or "".
func dockerIP(app *marathon.Application) string {
	var ip string
	if c := app.Container; c != nil && c.Docker != nil && c.Docker.Parameters != nil {
		for _, kv := range *c.Docker.Parameters {
			if kv.Key == "ip" {
				ip = kv.Value
			}
		}
	}
	return ip
}
