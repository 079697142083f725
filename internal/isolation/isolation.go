// Package isolation loads the isolation table (testdata/isolation/table.yaml):
// apps, a policy, and what a client at each address gets for each name and
// virtual host. The catalog's, the DNS plugin's and nginxctl's tests run the
// same table, so that DNS and Nginx never disagree.
package isolation

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/oakdns/oak/catalog"
)

// Table is the loaded table.
type Table struct {
	Policy []string    `yaml:"policy"` // Corefile lines of the marathon block
	Apps   []App       `yaml:"apps"`
	Names  []NameCase  `yaml:"names"`
	VHosts []VHostCase `yaml:"vhosts"`
}

// App is one Marathon app of the table.
type App struct {
	ID           string            `yaml:"id"`
	Labels       map[string]string `yaml:"labels"`
	DockerIP     string            `yaml:"docker_ip"`
	HealthChecks int               `yaml:"health_checks"`
	Tasks        []Task            `yaml:"tasks"`
}

// Task is one task of an App.
type Task struct {
	State  string   `yaml:"state"`
	Host   string   `yaml:"host"`
	IPs    []string `yaml:"ips"`
	Health []bool   `yaml:"health"`
}

// NameCase is what a client gets for a DNS name.
type NameCase struct {
	Client string   `yaml:"client"`
	Name   string   `yaml:"name"`
	Kind   string   `yaml:"kind"`
	Env    string   `yaml:"env"`   // serving (or, below-served, the base's serving) or holding env
	Addrs  []string `yaml:"addrs"` // served: the A records
	Why    string   `yaml:"why"`
}

// VHostCase is what a client gets for an OAK_HTTP host.
type VHostCase struct {
	Client   string   `yaml:"client"`
	Host     string   `yaml:"host"`
	Kind     string   `yaml:"kind"`
	Env      string   `yaml:"env"`
	Backends []string `yaml:"backends"` // served: addr:port
	Why      string   `yaml:"why"`
}

// Load reads the table from the repository's testdata.
func Load() (*Table, error) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "isolation", "table.yaml")
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	dec.KnownFields(true)
	var t Table
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// PolicyConfig parses the policy lines as the Corefile's marathon block
// does.
func (t *Table) PolicyConfig() (catalog.PolicyConfig, error) {
	var cfg catalog.PolicyConfig
	for _, line := range t.Policy {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if err := cfg.Option(fields[0], fields[1:]); err != nil {
			return cfg, fmt.Errorf("policy line %q: %w", line, err)
		}
	}
	return cfg, nil
}

// Snapshot builds the catalog snapshot of the table.
func (t *Table) Snapshot() (*catalog.Snapshot, error) {
	cfg, err := t.PolicyConfig()
	if err != nil {
		return nil, err
	}
	policy, err := catalog.NewPolicy(cfg)
	if err != nil {
		return nil, err
	}
	return catalog.Build(policy, t.CatalogApps()), nil
}

// CatalogApps returns the apps as the catalog reads them.
func (t *Table) CatalogApps() []catalog.App {
	out := make([]catalog.App, len(t.Apps))
	for i, a := range t.Apps {
		out[i] = catalog.App{ID: a.ID, Version: "v1", Labels: a.Labels, DockerIP: a.DockerIP, HealthChecks: a.HealthChecks}
		for j, task := range a.Tasks {
			out[i].Tasks = append(out[i].Tasks, catalog.Task{
				ID: fmt.Sprintf("%s.%d", strings.TrimPrefix(a.ID, "/"), j), State: task.State,
				Host: task.Host, IPs: task.IPs, Health: task.Health,
			})
		}
	}
	return out
}
