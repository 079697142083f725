// Package seed holds the topology of the talk oak comes from: one integration
// environment with the whole stack and a feature environment with only the
// project under test and its own redis. The demo, the end-to-end tests and the
// benchmarks all start from it, so they show the same scenario.
package seed

import (
	"context"
	"fmt"
	"time"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/internal/poll"
)

// Env names used by the seed topology.
const (
	Integration  = "integration"
	FeatureLogin = "feature-login"
)

// Client addresses: the fixed IPs of the two "app" containers. They are on
// loopback so that `dig -b ADDR` can play a container of either environment
// on a single machine.
const (
	IntegrationClient = "127.0.1.10"
	FeatureClient     = "127.0.2.10"
)

// App describes one Marathon app of the seed topology.
type App struct {
	ID    string
	Env   string // "" = the default env (no OAK_ENV label)
	Names string // OAK_NAMES
	IP    string // fixed IP: the Docker `ip` parameter and OAK_IP
	Ports string // OAK_PORTS
	HTTP  string // OAK_HTTP
	// Health adds a Marathon health check, so that the app serves its
	// names only while its tasks are healthy.
	Health bool
}

// Topology returns the seed's apps. Production-identical names, different
// addresses per environment.
func Topology() []App {
	return []App{
		{ID: "/integration/app", Names: "app1.example.com", IP: IntegrationClient, Ports: "http:8080", HTTP: "app1.example.com:8080"},
		{ID: "/integration/redis1", Names: "redis1.db.example.com", IP: "10.199.45.21", Ports: "redis:6379", Health: true},
		{ID: "/integration/db", Names: "db1.db.example.com", IP: "10.199.45.22", Ports: "mysql:3306"},
		{ID: "/integration/mq", Names: "mq1.mq.example.com", IP: "10.199.45.23", Ports: "amqp:5672"},
		{ID: "/integration/zookeeper", Names: "zk1.zk.example.com", IP: "10.199.45.24", Ports: "client:2181"},
		{ID: "/feature-login/app", Env: FeatureLogin, Names: "app1.example.com", IP: FeatureClient, Ports: "http:8080", HTTP: "app1.example.com:8080"},
		{ID: "/feature-login/redis1", Env: FeatureLogin, Names: "redis1.db.example.com", IP: "10.199.45.31", Ports: "redis:6379", Health: true},
	}
}

// Application turns a seed app into the Marathon app definition a deploy
// tool would POST: a Docker container on the oak network with a fixed IP, and
// the oak labels with the given prefix (e.g. "OAK_").
func (a App) Application(prefix string) *marathon.Application {
	labels := map[string]string{prefix + "NAMES": a.Names}
	if a.Env != "" {
		labels[prefix+"ENV"] = a.Env
	}
	if a.IP != "" {
		labels[prefix+"IP"] = a.IP
	}
	if a.Ports != "" {
		labels[prefix+"PORTS"] = a.Ports
	}
	if a.HTTP != "" {
		labels[prefix+"HTTP"] = a.HTTP
	}
	app := marathon.NewDockerApplication().Name(a.ID).CPU(0.1).Memory(64).Count(1)
	// The seed runs containers with `--net oak-net --ip X`: Marathon 1.4 passes
	// those through as Docker parameters on a HOST-mode container.
	app.Container.Docker.Container("oak/" + a.ID[1:]).Host()
	if a.IP != "" {
		app.Container.Docker.AddParameter("net", "oak-net").AddParameter("ip", a.IP)
	}
	if a.Health {
		app.AddHealthCheck(marathon.HealthCheck{
			Protocol: "COMMAND",
			Command:  &marathon.Command{Value: "redis-cli ping"},
		})
	}
	app.Labels = &labels
	return app
}

// Deploy creates every seed app on Marathon through go-marathon and waits
// until each has its tasks running (and healthy where it has health checks)
// and no deployment is left, so that the apps can be changed at once (an app
// with a running deployment is locked).
func Deploy(client marathon.Marathon, prefix string, timeout time.Duration) error {
	for _, app := range Topology() {
		if _, err := client.CreateApplication(app.Application(prefix)); err != nil {
			return fmt.Errorf("create %s: %w", app.ID, err)
		}
	}
	for _, app := range Topology() {
		if err := client.WaitOnApplication(app.ID, timeout); err != nil {
			return fmt.Errorf("wait for %s: %w", app.ID, err)
		}
	}
	return poll.Until(context.Background(), "deployments to end", timeout, 20*time.Millisecond, func() error {
		deployments, err := client.Deployments()
		if err != nil {
			return err
		}
		if len(deployments) > 0 {
			return fmt.Errorf("%d still running: %v", len(deployments), deployments)
		}
		return nil
	})
}
