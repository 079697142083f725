package nginxctl

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestAPI(t *testing.T) {
	controllerTest(t, func(t *testing.T, ctl *Controller, src *fakeSource, ap *fakeApplier) {
		m := modelN(1)
		m.Envs = []EnvRoutes{{Env: "feature-x", Routes: []Route{held("app2.example.com", "feature-x")}}}
		src.set(m)
		synctest.Wait()
		mux := http.NewServeMux()
		ctl.Register(mux)
		call := func(path string) (int, string) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			body, _ := io.ReadAll(rec.Result().Body)
			return rec.Code, string(body)
		}

		code, body := call("/v1/views?env=feature-x")
		var view EnvView
		if err := json.Unmarshal([]byte(body), &view); code != 200 || err != nil {
			t.Fatalf("/v1/views: %d %v %s", code, err, body)
		}
		if len(view.VHosts) != 2 || view.VHosts[0].Kind != "served" || view.VHosts[0].Backends[0] != "127.0.1.10:1001" ||
			view.VHosts[1].Kind != "held" || view.VHosts[1].ServingEnv != "feature-x" || view.Applied == nil {
			t.Errorf("/v1/views?env=feature-x = %s", body)
		}
		if code, _ := call("/v1/views?env=Bad%20Env"); code != http.StatusBadRequest {
			t.Errorf("/v1/views with a bad env: %d, want 400", code)
		}
		if code, body := call("/v1/rejections"); code != 200 || !strings.Contains(body, `"app": "/bad"`) {
			t.Errorf("/v1/rejections: %d %s", code, body)
		}
		if code, body := call("/healthz"); code != 200 || !strings.HasPrefix(body, "ok generation=") {
			t.Errorf("/healthz: %d %s", code, body)
		}
		code, body = call("/metrics")
		if code != 200 {
			t.Errorf("/metrics: %d", code)
		}
		for _, want := range []string{`oak_nginx_reloads_total{result="ok"} 1`, `oak_nginx_rejected{source="app"} 1`, "oak_nginx_routes 2", "oak_nginx_last_reload_success_timestamp_seconds 9.466848e+08", "oak_nginx_batch_size_count", "oak_nginx_render_duration_seconds_count 1"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}

		ap.setFail(errors.New("bad config"))
		time.Sleep(2 * time.Second)
		src.set(modelN(2))
		synctest.Wait()
		if code, body := call("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "bad config") {
			t.Errorf("/healthz while applies fail: %d %s", code, body)
		}
		if _, body := call("/metrics"); !strings.Contains(body, `oak_nginx_reloads_total{result="check_failed"} 1`) || !strings.Contains(body, "oak_nginx_apply_failing 1") {
			t.Errorf("/metrics does not count the failure:\n%s", body)
		}
	})
}
