// Package localtls makes a throwaway certificate authority and a server
// certificate for 127.0.0.1, ::1 and localhost, so local stand-ins can serve
// HTTPS that real clients (azidentity, the collector's confighttp client)
// trust through an ordinary CA file rather than InsecureSkipVerify.
//
//	b, _ := localtls.New()
//	srv := httptest.NewUnstartedServer(h)
//	srv.TLS = b.ServerTLSConfig()
//	srv.StartTLS()
//	_ = b.WriteCAFile(filepath.Join(dir, "ca.pem")) // give this path to tls.ca_file
package localtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// Bundle is a CA and one server certificate it signed. It lives in memory
// only; nothing about it is secret beyond the test that made it.
type Bundle struct {
	// CAPEM is the CA certificate, PEM encoded: what clients trust.
	CAPEM []byte
	// ServerCertificate is the certificate and key a server presents.
	ServerCertificate tls.Certificate
	pool              *x509.CertPool
}

// New creates a CA and a server certificate valid for 127.0.0.1, ::1 and
// localhost, for 24 hours from an hour ago (tolerates small clock skew).
func New() (*Bundle, error) {
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(25 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("localtls: CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localtls throwaway CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("localtls: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("localtls: CA certificate: %w", err)
	}

	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("localtls: server key: %w", err)
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("localtls: server certificate: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &Bundle{
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		ServerCertificate: tls.Certificate{
			Certificate: [][]byte{serverDER, caDER},
			PrivateKey:  serverKey,
		},
		pool: pool,
	}, nil
}

// WriteCAFile writes the CA certificate (PEM) to path, for tls.ca_file.
func (b *Bundle) WriteCAFile(path string) error {
	return os.WriteFile(path, b.CAPEM, 0o600)
}

// ServerTLSConfig is a server configuration presenting the server certificate.
func (b *Bundle) ServerTLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{b.ServerCertificate}, MinVersion: tls.VersionTLS12}
}

// ClientTLSConfig trusts only this bundle's CA.
func (b *Bundle) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: b.pool, MinVersion: tls.VersionTLS12}
}

// CertPool holds the CA certificate.
func (b *Bundle) CertPool() *x509.CertPool { return b.pool }
