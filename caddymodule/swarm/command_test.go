package swarm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/hang":
			<-block
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) }) // runs first: srv.Close waits for /hang

	for _, tc := range []struct {
		path    string
		timeout time.Duration // generous where an answer comes; short where none does
		wantErr string
	}{
		{"/ok", time.Minute, ""},
		{"/down", time.Minute, "503 Service Unavailable"},
		{"/redirect", time.Minute, "302 Found"},
		{"/hang", 200 * time.Millisecond, "deadline exceeded"},
	} {
		err := checkHealth(context.Background(), http.DefaultTransport, srv.URL+tc.path, tc.timeout)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v, want healthy", tc.path, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.path, err, tc.wantErr)
		}
	}
	if err := checkHealth(context.Background(), http.DefaultTransport, "::bad", time.Second); err == nil || !strings.Contains(err.Error(), `health URL "::bad"`) {
		t.Errorf("bad URL: %v, want an error naming it", err)
	}
}
