package marathonsim

import (
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// webApp is a Docker app as the project deploys them.
func webApp(id string, n int, labels map[string]string) *marathon.Application {
	a := marathon.NewDockerApplication().Name(id).Count(n).CPU(0.1).Memory(64)
	a.Container.Docker.Container("nginx").Bridged().Expose(80)
	for k, v := range labels {
		a.AddLabel(k, v)
	}
	return a
}

func appsWithTasks(t *testing.T, c marathon.Marathon) map[string]marathon.Application {
	t.Helper()
	list, err := c.Applications(url.Values{"embed": {"apps.tasks"}})
	if err != nil {
		t.Fatalf("Applications: %v", err)
	}
	out := map[string]marathon.Application{}
	for _, a := range list.Apps {
		out[a.ID] = a
	}
	return out
}

func runningIPs(a marathon.Application) []string {
	var ips []string
	for _, task := range a.Tasks {
		if task.State != "TASK_RUNNING" {
			continue
		}
		for _, ip := range task.IPAddresses {
			ips = append(ips, ip.IPAddress)
		}
	}
	slices.Sort(ips)
	return ips
}

func apiErrCode(t *testing.T, err error) int {
	t.Helper()
	var apiErr *marathon.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not a *marathon.APIError", err, err)
	}
	return apiErr.ErrCode
}

func TestClientLifecycle(t *testing.T) {
	f := start(t, fast())
	c := f.client

	created, err := c.CreateApplication(webApp("shop/web", 2, map[string]string{"OAK_NAMES": "web.example.com"}))
	if err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	if created.ID != "/shop/web" || len(created.Deployments) != 1 || created.Deployments[0]["id"] == "" {
		t.Fatalf("create answer: id %q deployments %v", created.ID, created.Deployments)
	}
	f.settle(t)

	apps := appsWithTasks(t, c)
	web, ok := apps["/shop/web"]
	if !ok {
		t.Fatalf("apps: %v", apps)
	}
	prefix := netip.MustParsePrefix("10.199.46.0/24")
	ips := runningIPs(web)
	if len(ips) != 2 || ips[0] == ips[1] {
		t.Fatalf("running ips %v, want 2 distinct", ips)
	}
	for _, ip := range ips {
		if !prefix.Contains(netip.MustParseAddr(ip)) {
			t.Errorf("ip %s not in %s", ip, prefix)
		}
	}
	for _, task := range web.Tasks {
		if !strings.HasPrefix(task.ID, "shop_web.") || strings.Count(task.ID, ".") != 1 {
			t.Errorf("task id %q, want shop_web.<uuid>", task.ID)
		}
		if task.Host != "127.0.0.1" || len(task.Ports) != 1 || task.AppID != "/shop/web" {
			t.Errorf("task %+v", task)
		}
	}
	if (*web.Labels)["OAK_NAMES"] != "web.example.com" || *web.Instances != 2 || web.TasksRunning != 2 {
		t.Errorf("app %+v", web)
	}

	// Scale up, then down.
	if _, err := c.ScaleApplicationInstances("/shop/web", 3, false); err != nil {
		t.Fatalf("scale: %v", err)
	}
	f.settle(t)
	if got := runningIPs(appsWithTasks(t, c)["/shop/web"]); len(got) != 3 || !slices.Contains(got, ips[0]) {
		t.Fatalf("after scale to 3: %v (old tasks must stay)", got)
	}
	if _, err := c.ScaleApplicationInstances("/shop/web", 1, false); err != nil {
		t.Fatalf("scale: %v", err)
	}
	f.settle(t)
	if got := runningIPs(appsWithTasks(t, c)["/shop/web"]); len(got) != 1 {
		t.Fatalf("after scale to 1: %v", got)
	}

	// A label change restarts the tasks with a new version.
	before := appsWithTasks(t, c)["/shop/web"]
	update := webApp("/shop/web", 1, map[string]string{"OAK_NAMES": "shop.example.com"})
	if _, err := c.UpdateApplication(update, false); err != nil {
		t.Fatalf("update: %v", err)
	}
	f.settle(t)
	after := appsWithTasks(t, c)["/shop/web"]
	if (*after.Labels)["OAK_NAMES"] != "shop.example.com" || len(after.Tasks) != 1 {
		t.Fatalf("after update: %+v", after)
	}
	if after.Tasks[0].ID == before.Tasks[0].ID || after.Tasks[0].Version == before.Tasks[0].Version {
		t.Errorf("label change did not replace the task: %v -> %v", before.Tasks[0], after.Tasks[0])
	}

	// Kill a task: a replacement comes up.
	victim := after.Tasks[0].ID
	if _, err := c.KillTask(victim, nil); err != nil {
		t.Fatalf("KillTask: %v", err)
	}
	f.settle(t)
	final := appsWithTasks(t, c)["/shop/web"]
	if len(final.Tasks) != 1 || final.Tasks[0].ID == victim || final.Tasks[0].State != "TASK_RUNNING" {
		t.Fatalf("after kill: %+v", final.Tasks)
	}

	// Versions.
	versions, err := c.ApplicationVersions("/shop/web")
	if err != nil || len(versions.Versions) < 4 {
		t.Fatalf("versions %v, %v", versions, err)
	}
	old, err := c.ApplicationByVersion("/shop/web", versions.Versions[len(versions.Versions)-1])
	if err != nil || *old.Instances != 2 {
		t.Fatalf("first version: %+v, %v", old, err)
	}

	// Delete.
	if _, err := c.DeleteApplication("/shop/web", false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	f.settle(t)
	if _, err := c.Application("/shop/web"); apiErrCode(t, err) != marathon.ErrCodeNotFound {
		t.Fatalf("after delete: %v", err)
	}
	tasks, err := c.AllTasks(nil)
	if err != nil || len(tasks.Tasks) != 0 {
		t.Fatalf("tasks after delete: %+v, %v", tasks, err)
	}
}

func TestClientErrors(t *testing.T) {
	f := start(t, Options{StagingDelay: time.Hour}) // deployments stay in progress
	c := f.client
	if _, err := c.CreateApplication(webApp("/web", 1, nil)); err != nil {
		t.Fatalf("create: %v", err)
	}
	tests := []struct {
		name string
		call func() error
		code int
	}{
		{"duplicate create", func() error { _, err := c.CreateApplication(webApp("/web", 1, nil)); return err }, marathon.ErrCodeDuplicateID},
		{"missing app", func() error { _, err := c.Application("/nope"); return err }, marathon.ErrCodeNotFound},
		{"locked by deployment", func() error { _, err := c.ScaleApplicationInstances("/web", 2, false); return err }, marathon.ErrCodeAppLocked},
		{"bad id", func() error { _, err := c.CreateApplication(webApp("/Bad_ID", 1, nil)); return err }, marathon.ErrCodeInvalidBean},
		{"negative instances", func() error { _, err := c.CreateApplication(webApp("/neg", -1, nil)); return err }, marathon.ErrCodeInvalidBean},
		{"delete missing", func() error { _, err := c.DeleteApplication("/nope", false); return err }, marathon.ErrCodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := apiErrCode(t, tt.call()); got != tt.code {
				t.Errorf("ErrCode %d, want %d", got, tt.code)
			}
		})
	}
	// force=true overrides the lock.
	if _, err := c.ScaleApplicationInstances("/web", 2, true); err != nil {
		t.Fatalf("forced scale: %v", err)
	}
	deployments, err := c.Deployments()
	if err != nil || len(deployments) != 1 || deployments[0].AffectedApps[0] != "/web" {
		t.Fatalf("deployments %+v, %v", deployments, err)
	}
	if _, err := c.DeleteDeployment(deployments[0].ID, false); err != nil {
		t.Fatalf("DeleteDeployment: %v", err)
	}
}
