package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir
// (server.crt, server.key) and returns a pool that trusts it. It is its
// own CA and good for clients too.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "drover test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "server.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

// TestDaemonWebConfigTLSAndBasicAuth: with a web config asking for TLS
// and basic auth, a scrape over TLS with the right password gets the
// metrics; plain HTTP, no password and a wrong one get nothing.
func TestDaemonWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("right horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web-config.yml")
	cfg := fmt.Sprintf("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: %s\n", hash)
	if err := os.WriteFile(webConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)).Core()))
	d := &daemon{svc: serviceOptions{stateDir: dir, webConfig: webConfig}, file: manifest, listen: "127.0.0.1:0",
		lockDir: dir, grace: 5 * time.Second}
	addr, _ := runInProcess(t, d, log, logs)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url, user, password string) (int, string, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	code, body, err := get("https://"+addr+"/metrics", "prometheus", "right horse")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "drover_manifest_generation") {
		t.Errorf("TLS scrape with the password: %d %v\n%.300s", code, err, body)
	}
	if code, body, err := get("http://"+addr+"/metrics", "prometheus", "right horse"); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP scrape succeeded: %d\n%.300s", code, body)
	}
	if code, _, err := get("https://"+addr+"/metrics", "prometheus", "wrong horse"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("TLS scrape with a wrong password: %d %v, want 401", code, err)
	}
	if code, _, err := get("https://"+addr+"/api/v1/status", "", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("status without a password: %d %v, want 401", code, err)
	}

	// drover status, with the CA and the password.
	for _, c := range []struct {
		password string
		code     int
		want     string
	}{{"right horse", 0, "cluster nowhere"}, {"wrong horse", 1, "401 Unauthorized"}} {
		pwFile := filepath.Join(dir, "password")
		if err := os.WriteFile(pwFile, []byte(c.password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runDrover(t, "status", "--addr", "https://"+addr, "--ca-file", filepath.Join(dir, "server.crt"),
			"--user", "prometheus", "--password-file", pwFile)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("drover status with %q: exit %d, want %d with %q:\n%s%s", c.password, code, c.code, c.want, out, errs)
		}
	}
}

// TestDaemonWebConfigClientCerts: with client certificates required, a
// client that shows one signed by the CA is served and one without is
// refused in the handshake.
func TestDaemonWebConfigClientCerts(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	webConfig := filepath.Join(dir, "web-config.yml")
	cfg := "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.crt\n"
	if err := os.WriteFile(webConfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)).Core()))
	d := &daemon{svc: serviceOptions{stateDir: dir, webConfig: webConfig}, file: manifest, listen: "127.0.0.1:0",
		lockDir: dir, grace: 5 * time.Second}
	addr, _ := runInProcess(t, d, log, logs)

	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{{"with a certificate", []tls.Certificate{cert}, true}, {"without", nil, false}} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: c.certs}}}
		resp, err := client.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		if ok := err == nil && resp.StatusCode == http.StatusOK; ok != c.ok {
			t.Errorf("%s: served %v (%v), want %v", c.name, ok, err, c.ok)
		}
	}
}

// TestDaemonBadWebConfigStopsStart: a web config that does not hold
// stops the daemon at start with its path, instead of a listener that
// fails every request.
func TestDaemonBadWebConfigStopsStart(t *testing.T) {
	dir := t.TempDir()
	webConfig := filepath.Join(dir, "web-config.yml")
	if err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(manifest, []byte(unreachableManifest(t, "30s")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runDrover(t, "daemon", "-f", manifest, "--lock-dir", dir, "--state-dir", dir, "--addr", "127.0.0.1:0", "--web.config.file", webConfig)
	if code != 1 || !strings.Contains(errs, "--web.config.file "+webConfig) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestWarnBeyondLoopback: beyond loopback, plain HTTP is warned of, and
// so are reads without a password or client certificate; on loopback
// nothing is.
func TestWarnBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		ip                string
		w                 webListen
		warnPlain, warnRO bool
	}{
		{"0.0.0.0", webListen{}, true, true},
		{"192.0.2.1", webListen{auth: true}, true, false},
		{"0.0.0.0", webListen{tls: true}, false, true},
		{"0.0.0.0", webListen{tls: true, auth: true}, false, false},
		{"127.0.0.1", webListen{}, false, false},
	} {
		core, logs := observer.New(zapcore.WarnLevel)
		c.w.warnBeyondLoopback(zap.New(core), &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 9464})
		plain := logs.FilterMessageSnippet("without TLS").Len() == 1
		ro := logs.FilterMessageSnippet("anyone who can reach them").Len() == 1
		if plain != c.warnPlain || ro != c.warnRO {
			t.Errorf("%s %+v: warned of plain HTTP %v, of open reads %v; want %v, %v", c.ip, c.w, plain, ro, c.warnPlain, c.warnRO)
		}
	}
}

// TestLoadWebConfig: what the daemon reads of a web config.
func TestLoadWebConfig(t *testing.T) {
	dir := t.TempDir()
	selfSigned(t, dir)
	for _, c := range []struct {
		name, text string
		want       webListen
	}{
		{"all commented", "# tls_server_config:\n", webListen{}},
		{"tls", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", webListen{tls: true}},
		{"tls and client certs", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.crt\n", webListen{tls: true, auth: true}},
		{"basic auth", "basic_auth_users:\n  p: $2y$10$abcdefghijklmnopqrstuu5Vr1zv2zL0HWy2OdX0BuKkWp0xV7cCq\n", webListen{auth: true}},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yml")
		if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := loadWebConfig(path)
		c.want.path = path
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
}
