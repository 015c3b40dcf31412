package https_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// acmeServer is pebble, Let's Encrypt's test ACME server, run in the test
// process the way its cmd/pebble assembles it.
type acmeServer struct {
	directoryURL string
	tlsRootFile  string         // PEM of the directory's own TLS certificate, for acme_ca_root
	issuerRoots  *x509.CertPool // the root that issued certificates chain to
	newOrders    atomic.Int32   // new-order requests received
}

// startACMEServer runs pebble on a loopback port. Its validation authority
// resolves names through dnsAddr and checks HTTP-01 challenges on httpPort
// and TLS-ALPN-01 challenges on tlsPort of the address it resolved.
func startACMEServer(t *testing.T, dnsAddr string, httpPort, tlsPort int) *acmeServer {
	t.Helper()
	// Validate at once (no random 0–5 s wait) and never reject a good nonce
	// (pebble rejects 5 % by default to exercise clients' retries).
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")

	// Its log is not needed: the edge logs the ACME server's error details.
	logger := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {}})
	validator := va.New(logger, httpPort, tlsPort, false, dnsAddr, store)
	// The CAA identity is cmd/pebble's default; it only shows in the directory.
	frontEnd := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)

	handler := frontEnd.Handler()
	newOrderPath := directoryPath(t, handler, "newOrder")
	s := &acmeServer{issuerRoots: x509.NewCertPool()}
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
			s.newOrders.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	server.StartTLS()
	t.Cleanup(server.Close)

	s.directoryURL = server.URL + wfe.DirectoryPath
	s.issuerRoots.AddCert(authority.GetRootCert(0).Cert)
	s.tlsRootFile = filepath.Join(t.TempDir(), "acme-directory.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	if err := os.WriteFile(s.tlsRootFile, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// directoryPath reads the path of one resource from the ACME directory.
func directoryPath(t *testing.T, handler http.Handler, resource string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://127.0.0.1"+wfe.DirectoryPath, nil)
	req.Header.Set("User-Agent", "swarmedge-test") // pebble requires one
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	var directory map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &directory); err != nil {
		t.Fatalf("ACME directory: %v\n%s", err, rec.Body)
	}
	link, _ := directory[resource].(string)
	u, err := url.Parse(link)
	if err != nil || u.Path == "" {
		t.Fatalf("ACME directory has no %s URL: %s", resource, rec.Body)
	}
	return u.Path
}
