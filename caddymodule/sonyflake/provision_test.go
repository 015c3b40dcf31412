package sonyflake

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// validateConfig provisions (without starting) a config whose one route runs
// handler, beside the sonyflake app given as JSON ("" for none).
func validateConfig(t *testing.T, app, handler string) error {
	t.Helper()
	apps := `"http":{"servers":{"edge":{"listen":["127.0.0.1:0"],"routes":[{"handle":[` + handler + `]}]}}}`
	if app != "" {
		apps = `"sonyflake":` + app + `,` + apps
	}
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{`+apps+`}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// Provision errors of both handlers reach the user naming the setting.
func TestHandlersProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		name, app, handler string
		want               []string // "": provisioned
	}{
		{"endpoint, app refused", `{"machine_id":1,"sequence_bits":40}`, `{"handler":"sonyflake"}`, []string{"sequence_bits 40: must be 1 to 30"}},
		{"endpoint, machine ID out of range", `{"machine_id":70000}`, `{"handler":"sonyflake"}`, []string{"machine_id 70000: must be 0 to 65535"}},
		{"request_id, app refused", `{"machine_id":1,"time_unit":100}`, `{"handler":"request_id"}`, []string{"time_unit 100ns: must be at least 1ms"}},
		{"request_id, header Host", `{"machine_id":61999}`, `{"handler":"request_id","header":"Host"}`, []string{`request_id: header "Host" frames or routes the message`}},
		{"request_id, invalid header", `{"machine_id":61999}`, `{"handler":"request_id","header":"X Id"}`, []string{`request_id: header "X Id" is not a valid HTTP header name`}},
		{"endpoint, provisioned", `{"machine_id":61999}`, `{"handler":"sonyflake"}`, nil},
		{"request_id, provisioned", `{"machine_id":61999}`, `{"handler":"request_id","header":"X-Trace"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateConfig(t, tc.app, tc.handler)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
