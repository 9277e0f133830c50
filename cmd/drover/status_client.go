package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// statusAccess is how a command reaches a daemon whose listener has a web
// config (--web.config.file): https, its CA, basic auth.
type statusAccess struct {
	caFile       string
	user         string
	passwordFile string
}

func (a *statusAccess) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.caFile, "ca-file", "", "CA certificate(s) that signed the daemon's TLS certificate (default: the system's)")
	cmd.Flags().StringVar(&a.user, "user", "", "basic auth user of the daemon's web config")
	cmd.Flags().StringVar(&a.passwordFile, "password-file", "", "file holding --user's password")
	_ = cmd.MarkFlagFilename("ca-file")
	_ = cmd.MarkFlagFilename("password-file")
}

// request is the GET of path from the daemon at addr (HOST:PORT is plain
// HTTP, or a URL with its scheme) and the client to send it with.
func (a statusAccess) request(addr, path string) (*http.Client, *http.Request, error) {
	return a.newRequest(http.MethodGet, addr, path, nil)
}

// newRequest is request with another method and a body (nil: none).
func (a statusAccess) newRequest(method, addr, path string, body []byte) (*http.Client, *http.Request, error) {
	base := addr
	if !strings.Contains(addr, "://") {
		base = "http://" + addr
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", a.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("--addr %s: %w", addr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.user != "" {
		if a.passwordFile == "" {
			return nil, nil, errors.New("--user needs --password-file")
		}
		pw, err := os.ReadFile(a.passwordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--password-file: %w", err)
		}
		req.SetBasicAuth(a.user, strings.TrimRight(string(pw), "\r\n"))
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, req, nil
}
