package marathonsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// adminRequest is the JSON body of admin calls; query parameters with the
// same names override it. Every field is optional.
type adminRequest struct {
	N       int    `json:"n"`       // fail-rest, drop-events
	Status  int    `json:"status"`  // fail-rest
	Ping    bool   `json:"ping"`    // fail-rest
	On      *bool  `json:"on"`      // refuse-streams (default true)
	MS      int    `json:"ms"`      // delay
	Task    string `json:"task"`    // task/healthy, task/unhealthy, task/kill
	Message string `json:"message"` // task/kill
}

// serveAdmin is the fault injection API under /_sim/. JSON in and out;
// everything but GET state is POST:
//
//	GET  /_sim/state                      State
//	GET  /_sim/stats                      Stats
//	POST /_sim/drop-streams               {"dropped":N}
//	POST /_sim/refuse-streams?on=true|false
//	POST /_sim/fail-rest?n=N[&status=503][&ping=true]
//	POST /_sim/drop-events?n=K
//	POST /_sim/delay?ms=D                 (0 clears)
//	POST /_sim/task/unhealthy?task=ID
//	POST /_sim/task/healthy?task=ID
//	POST /_sim/task/kill?task=ID[&message=...]
//	POST /_sim/reset
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, op string) {
	switch op {
	case "state":
		writeJSON(w, http.StatusOK, s.State())
		return
	case "stats":
		writeJSON(w, http.StatusOK, s.Stats())
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	req, err := parseAdmin(r)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	switch op {
	case "drop-streams":
		writeJSON(w, http.StatusOK, map[string]int{"dropped": s.DropStreams()})
		return
	case "refuse-streams":
		s.RefuseStreams(req.On == nil || *req.On)
	case "fail-rest":
		s.FailREST(RESTFault{Count: req.N, Status: req.Status, IncludePing: req.Ping})
	case "drop-events":
		s.DropEvents(req.N)
	case "delay":
		s.SetDelay(time.Duration(req.MS) * time.Millisecond)
	case "task/unhealthy", "task/healthy":
		if err := s.SetTaskHealth(req.Task, op == "task/healthy"); err != nil {
			writeMessage(w, http.StatusNotFound, err.Error())
			return
		}
	case "task/kill":
		if err := s.KillTask(req.Task, req.Message); err != nil {
			writeMessage(w, http.StatusNotFound, err.Error())
			return
		}
	case "reset":
		s.Reset()
	default:
		writeMessage(w, http.StatusNotFound, "unknown admin operation "+strconv.Quote(op))
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// parseAdmin reads the optional JSON body, then the query parameters.
func parseAdmin(r *http.Request) (adminRequest, error) {
	var req adminRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, err
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return req, err
		}
	}
	q := r.URL.Query()
	atoi := func(key string, dst *int) error {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return err
			}
			*dst = n
		}
		return nil
	}
	for key, dst := range map[string]*int{"n": &req.N, "status": &req.Status, "ms": &req.MS} {
		if err := atoi(key, dst); err != nil {
			return req, err
		}
	}
	if v := q.Get("ping"); v != "" {
		req.Ping = v == "true"
	}
	if v := q.Get("on"); v != "" {
		on := v == "true"
		req.On = &on
	}
	if v := q.Get("task"); v != "" {
		req.Task = v
	}
	if v := q.Get("message"); v != "" {
		req.Message = v
	}
	return req, nil
}
