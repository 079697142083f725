package test

import (
	"fmt"
	"testing"

	marathon "github.com/gambol99/go-marathon"

	"github.com/oakdns/oak/internal/seed"
	"github.com/oakdns/oak/internal/testutil"
)

// TestSeedFallback is the seed's scenario end to end: an integration env with
// app, redis1, db, mq and zookeeper, and a feature env with its own app and
// redis1. A container of the feature env (dig -b its fixed IP) resolves its
// own redis1 and the integration env's db; a container of the integration env
// sees only integration. Then Marathon changes (the feature redis1 turns
// unhealthy, loses its task, is deleted) and the next answers fall back.
func TestSeedFallback(t *testing.T) {
	digPath := testutil.RequireTool(t, "dig")
	url, client := startSim(t, "-health-delay", "10ms")
	deploySeed(t, client)

	_, port := startCoreDNS(t, onLoopback(t, readExample(t, "by-client.Corefile")), "MARATHON_URL="+url)
	server := fmt.Sprintf("127.0.0.1:%d", port)
	waitSynced(t, server, "db1.db.example.com")

	const (
		feature     = seed.FeatureClient
		integration = seed.IntegrationClient
	)
	expect := func(from, name, qtype string, want []string, extra ...string) {
		t.Helper()
		expectDig(t, digPath, "127.0.0.1", port, from, name, qtype, extra, want...)
	}

	// Each env sees its own redis1; db1 exists only in integration.
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.31"})
	expect(integration, "redis1.db.example.com", "A", []string{"10.199.45.21"})
	expect(feature, "db1.db.example.com", "A", []string{"10.199.45.22"})
	expect(feature, "app1.example.com", "A", []string{seed.FeatureClient})
	expect(integration, "app1.example.com", "A", []string{seed.IntegrationClient})
	// Mixed case and TCP answer the same.
	expect(feature, "ReDiS1.Db.Example.COM", "A", []string{"10.199.45.31"}, "+tcp")
	// "What does this container see?"
	expect(feature, "_env.example.com", "TXT", []string{`"env=feature-login" "how=app" "chain=feature-login,integration" "client=127.0.2.10"`})
	if got := digStatus(t, digPath, "127.0.0.1", port, feature, "nosuch.example.com", "A"); got != "NXDOMAIN" {
		t.Errorf("nosuch.example.com: status %s, want NXDOMAIN", got)
	}
	if got := digStatus(t, digPath, "127.0.0.1", port, feature, "redis1.db.example.com", "AAAA"); got != "NOERROR" {
		t.Errorf("redis1 AAAA: status %s, want NOERROR (NODATA)", got)
	}

	const featureRedis = "/feature-login/redis1"
	tasks, err := client.Tasks(featureRedis)
	if err != nil || len(tasks.Tasks) != 1 {
		t.Fatalf("tasks of %s: %v %v", featureRedis, tasks, err)
	}

	// 1. Unhealthy: the feature env no longer serves redis1.
	simAdmin(t, url, "task/unhealthy", map[string]any{"task": tasks.Tasks[0].ID})
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.21"})
	simAdmin(t, url, "task/healthy", map[string]any{"task": tasks.Tasks[0].ID})
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.31"})

	// 2. Its task killed and not replaced (scale down): fallback again.
	if _, err := client.KillTask(tasks.Tasks[0].ID, &marathon.KillTaskOpts{Scale: true}); err != nil {
		t.Fatal(err)
	}
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.21"})
	// The fallback shows while the task is still TASK_KILLING and its
	// scale-down deployment holds the app, as on Marathon: force past it.
	if _, err := client.ScaleApplicationInstances(featureRedis, 1, true); err != nil {
		t.Fatal(err)
	}
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.31"})

	// 3. Deleted: fallback, while the integration env is untouched. The
	// scale-up's deployment may still hold the app: force past it.
	if _, err := client.DeleteApplication(featureRedis, true); err != nil {
		t.Fatal(err)
	}
	expect(feature, "redis1.db.example.com", "A", []string{"10.199.45.21"})
	expect(integration, "redis1.db.example.com", "A", []string{"10.199.45.21"})
}
