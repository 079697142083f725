package marathonsim

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// FuzzPlanContainer feeds app definitions (untrusted: anyone who can post
// to Marathon writes them) to docker mode's translation. Whatever they
// hold, it must not panic, the simulator's own labels must win, Marathon's
// variables must be set, and a fixed address must be an IPv4 address on a
// user-defined network.
func FuzzPlanContainer(f *testing.F) {
	f.Add(`{"id":"/a","container":{"type":"DOCKER","docker":{"image":"i","network":"BRIDGE","parameters":[{"key":"net","value":"n"},{"key":"ip","value":"10.0.0.2"}]}}}`)
	f.Add(`{"id":"/a","cmd":"x","labels":{"com.oakdns.marathonsim.owner":"x","A":"b"},"env":{"MARATHON_APP_ID":"/evil"},"container":{"docker":{"image":"i","network":"USER"}},"ipAddress":{"networkName":"n"}}`)
	f.Add(`{"id":"/a","container":{"docker":{"image":"i","parameters":[{"key":"label","value":"com.oakdns.marathonsim.task=x"},{"key":"e","value":"MESOS_TASK_ID=y"}],"portMappings":[{"containerPort":80}]},"volumes":[{"containerPath":"/d","hostPath":"/h","mode":"RO"}]}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var top map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &top) != nil {
			return
		}
		def, aerr := parseFields(top)
		if aerr != nil {
			return
		}
		spec, aerr := parseSpec(def)
		if aerr != nil || !spec.runsContainer() {
			return
		}
		a := &app{id: normalizeID(spec.ID), spec: spec}
		tk := &task{ID: "a.1", Version: "v", Ports: []int{31000}}
		plan, err := planContainer(a, tk, "owner", "127.0.0.1")
		if err != nil {
			return
		}
		if plan.config.Labels[OwnerLabel] != "owner" || plan.config.Labels[TaskLabel] != tk.ID {
			t.Fatalf("labels %v: ours overridden", plan.config.Labels)
		}
		for _, kv := range []string{"MARATHON_APP_ID=" + a.id, "MESOS_TASK_ID=" + tk.ID} {
			if !slices.Contains(plan.config.Env, kv) {
				t.Fatalf("env %v lacks %s", plan.config.Env, kv)
			}
		}
		if plan.endpoint != nil {
			for name, ep := range plan.endpoint.EndpointsConfig {
				if !plan.host.NetworkMode.IsUserDefined() || string(plan.host.NetworkMode) != name {
					t.Fatalf("endpoint on %s, network mode %s", name, plan.host.NetworkMode)
				}
				if ep.IPAMConfig != nil {
					if addr, err := netip.ParseAddr(ep.IPAMConfig.IPv4Address); err != nil || !addr.Is4() {
						t.Fatalf("fixed address %q", ep.IPAMConfig.IPv4Address)
					}
				}
			}
		}
		if !strings.HasPrefix(plan.name, "mesos-") {
			t.Fatalf("name %q", plan.name)
		}
	})
}
