package swarmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ControlHandler returns the HTTP control API of s:
//
//	POST /scale?n=5                                   scale to 5 replicas
//	POST /kill?task=2[&dns=drop|keep]                 kill the task in slot 2
//	POST /health?task=2&state=ok|fail[&dns=drop|keep] make its /healthz pass or fail
//	POST /dns?fault=none|drop|servfail                set a DNS fault
//	POST /dns?nxdomain_delay=12s                      set the NXDOMAIN delay
//	POST /reset                                       zero the request counts
//	GET  /tasks                                       every task's status (JSON)
//	GET  /counts                                      requests per task name (JSON)
//
// Changes answer 204; invalid input answers 400 with a one-line reason.
func (s *Service) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /scale", control(func(r *http.Request) error {
		n, err := intParam(r, "n")
		if err != nil {
			return err
		}
		return s.Scale(n)
	}))
	mux.HandleFunc("POST /kill", control(func(r *http.Request) error {
		slot, policy, err := taskParams(r)
		if err != nil {
			return err
		}
		return s.Kill(slot, policy)
	}))
	mux.HandleFunc("POST /health", control(func(r *http.Request) error {
		slot, policy, err := taskParams(r)
		if err != nil {
			return err
		}
		var healthy bool
		switch state := r.FormValue("state"); state {
		case "ok":
			healthy = true
		case "fail":
		default:
			return fmt.Errorf("state must be ok or fail, not %q", state)
		}
		return s.SetHealthy(slot, healthy, policy)
	}))
	mux.HandleFunc("POST /dns", control(s.setDNS))
	mux.HandleFunc("POST /reset", control(func(*http.Request) error {
		s.ResetCounts()
		return nil
	}))
	mux.HandleFunc("GET /tasks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Tasks())
	})
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
		counts := make(map[string]uint64)
		for _, t := range s.Tasks() {
			counts[t.Name] = t.Requests
		}
		writeJSON(w, counts)
	})
	return mux
}

// control adapts a change to an HTTP handler: 204 when it succeeds, 400
// with the error's text when it does not.
func control(change func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := change(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// setDNS applies the fault and NXDOMAIN delay that r asks for: at least one.
func (s *Service) setDNS(r *http.Request) error {
	fault, delay := r.FormValue("fault"), r.FormValue("nxdomain_delay")
	if fault == "" && delay == "" {
		return errors.New("want fault=none|drop|servfail or nxdomain_delay=<duration>")
	}
	var f DNSFault
	var d time.Duration
	var err error
	if fault != "" {
		if f, err = parseDNSFault(fault); err != nil {
			return err
		}
	}
	if delay != "" {
		if d, err = time.ParseDuration(delay); err != nil || d < 0 {
			return fmt.Errorf("nxdomain_delay must be a duration like 12s, not %q", delay)
		}
	}
	// Both are checked before either is applied: a 400 changes nothing.
	if fault != "" {
		s.SetDNSFault(f)
	}
	if delay != "" {
		s.SetNXDomainDelay(d)
	}
	return nil
}

// taskParams reads task (a slot number) and dns (drop, the default, or keep).
func taskParams(r *http.Request) (int, RecordPolicy, error) {
	slot, err := intParam(r, "task")
	if err != nil {
		return 0, 0, err
	}
	switch dns := r.FormValue("dns"); dns {
	case "", "drop":
		return slot, DropRecord, nil
	case "keep":
		return slot, KeepRecord, nil
	default:
		return 0, 0, fmt.Errorf("dns must be drop or keep, not %q", dns)
	}
}

// intParam reads the integer parameter name.
func intParam(r *http.Request, name string) (int, error) {
	v := r.FormValue(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s must be an integer, not %q", name, v)
	}
	return n, nil
}

// writeJSON writes v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
