package https_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
)

// internalCaddyfile is a private cluster's edge: certificates from Caddy's
// own CA (`tls internal`) under a root every node is given, so clients
// trust one root whichever node they reach. %[1]s and %[2]s are the root's
// certificate and key files.
const internalCaddyfile = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	http_port {{.HTTPPort}}
	https_port {{.HTTPSPort}}
	skip_install_trust
	pki {
		ca {
			root {
				cert %[1]s
				key %[2]s
			}
		}
	}
	sonyflake {
		machine_id 7
	}
}
` + siteName + ` {
	tls internal
` + siteRoutes + `}
`

// TestTLSInternalSharedRoot runs two edges with separate storage and the
// same internal CA root: each issues its own certificate, and both verify
// against that one root.
func TestTLSInternalSharedRoot(t *testing.T) {
	roots, certFile, keyFile := writeRootCA(t)
	caddyfile := fmt.Sprintf(internalCaddyfile, certFile, keyFile)

	var serials []*big.Int
	for range 2 {
		node := edge.NewNode(t)
		if _, err := node.Start(t, caddyfile); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, waitForCertificate(t, node.HTTPSPort, roots, issuanceTimeout).SerialNumber)

		clients := newClients(roots)
		assertRequestIDs(t, clients.h2, "HTTP/2.0", node)
		clients.close()
	}
	if serials[0].Cmp(serials[1]) == 0 {
		t.Errorf("both edges serve certificate %x; want one issued by each", serials[0])
	}
}

// writeRootCA makes a root CA certificate and key, as an operator would
// once for the cluster, and writes them as PEM files.
func writeRootCA(t *testing.T) (roots *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "swarmedge test cluster root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0), // outlives the intermediates Caddy makes (7 days)
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "root.crt"), filepath.Join(dir, "root.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return roots, certFile, keyFile
}
