// Package marathonsim is a stateful Marathon 1.4 simulator: the REST API and
// the server-sent event stream that go-marathon v0.7.1 talks to, with apps,
// tasks, deployments, versions and fault injection for tests.
//
// See docs/marathon-api.md (§2 shapes and event orders, §5 requirements)
// for what "as real Marathon does" means here.
//
// Usage in a test:
//
//	sim := marathonsim.New(marathonsim.Options{StagingDelay: -1}) // tasks run at once
//	srv := httptest.NewServer(sim)
//	defer srv.Close()
//	defer sim.Close() // runs first: stops deployments, task timers and streams
//
//	cfg := marathon.NewDefaultConfig()
//	cfg.URL = srv.URL
//	cfg.EventsTransport = marathon.EventsTransportSSE
//	client, _ := marathon.NewClient(cfg)
//	client.CreateApplication(marathon.NewDockerApplication().Name("/web").Count(2))
//	sim.Settle(ctx) // wait until no deployment runs and no task is staging
//
// Faults are set with methods (DropStreams, RefuseStreams, FailREST,
// DropEvents, SetDelay, SetTaskHealth, KillTask, Reset) or the equivalent
// JSON admin API under /_sim/ (see admin.go). Start state can be given as a
// GET /v2/apps?embed=apps.tasks body in Options.Apps; its tasks are loaded
// as they are.
//
// Deployment plans carry the whole root group before and after, as
// Marathon's do; it is rendered once per change and shared by the events of
// a deployment. On clusters of thousands of apps that is still megabytes
// per event, so Options.PlanGroups = PlanGroupsAffected (marathon-sim
// -plan-groups affected) keeps only the deployed app in plans: a
// benchmark-only deviation for clients that read only plan ids and steps.
//
// Docker mode (Options.Docker, marathon-sim -docker) runs the tasks of
// Docker apps as real containers on the local engine, through the Docker
// Go client: the app's image, env, labels and Docker parameters (net, ip,
// dns...), the task's state following its container and its ipAddresses
// the container's. It is a test and demo harness, not Mesos; see Docker.
//
// Close the Server before the HTTP server that serves it: Close ends the
// event streams, which httptest.Server.Close would otherwise wait for.
package marathonsim
