package watcher

import (
	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/catalog"
)

// appOf converts a go-marathon application into the catalog's input at
// the edge, so that nothing past the watcher sees go-marathon's types.
func appOf(a *marathon.Application) catalog.App {
	out := catalog.App{ID: a.ID, Version: a.Version, Tasks: make([]catalog.Task, 0, len(a.Tasks))}
	if a.VersionInfo != nil {
		out.ConfigChange = a.VersionInfo.LastConfigChangeAt
	}
	if a.Labels != nil {
		out.Labels = *a.Labels
	}
	if a.HealthChecks != nil {
		out.HealthChecks = len(*a.HealthChecks)
	}
	switch {
	case a.PortDefinitions != nil && len(*a.PortDefinitions) > 0:
		for _, d := range *a.PortDefinitions {
			spec := catalog.PortSpec{Name: d.Name, Protocol: d.Protocol}
			if d.Port != nil {
				spec.Number = *d.Port
			}
			out.Ports = append(out.Ports, spec)
		}
	case a.Container != nil && a.Container.Docker != nil && a.Container.Docker.PortMappings != nil:
		for _, m := range *a.Container.Docker.PortMappings {
			out.Ports = append(out.Ports, catalog.PortSpec{Name: m.Name, Number: m.ContainerPort, Protocol: m.Protocol})
		}
	}
	if a.Container != nil && a.Container.Docker != nil && a.Container.Docker.Parameters != nil {
		for _, p := range *a.Container.Docker.Parameters {
			if p.Key == "ip" {
				out.DockerIP = p.Value
			}
		}
	}
	for _, t := range a.Tasks {
		if t != nil {
			out.Tasks = append(out.Tasks, taskOf(t))
		}
	}
	return out
}

// taskOf converts one task; a nil health result counts as not alive.
func taskOf(t *marathon.Task) catalog.Task {
	out := catalog.Task{ID: t.ID, State: t.State, Host: t.Host, Ports: t.Ports}
	for _, ip := range t.IPAddresses {
		if ip != nil {
			out.IPs = append(out.IPs, ip.IPAddress)
		}
	}
	for _, r := range t.HealthCheckResults {
		out.Health = append(out.Health, r != nil && r.Alive)
	}
	return out
}

// appsOf converts a list of applications.
func appsOf(list []marathon.Application) []catalog.App {
	out := make([]catalog.App, len(list))
	for i := range list {
		out[i] = appOf(&list[i])
	}
	return out
}
