package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v2"
)

// The daemon's HTTP listener takes the Prometheus exporters' web config
// (--web.config.file: TLS, client certificates, basic auth), through
// their own library, so an operator who secured an exporter knows how to
// secure drover. The file is read again for every connection, so new
// certificates or passwords need no restart. The console token is asked
// for on top of it for every write.

// webListen is what the web config says of the listener.
type webListen struct {
	path string // --web.config.file; "" for plain HTTP with no auth
	tls  bool
	// auth: reads need a password or a client certificate.
	auth bool
}

// loadWebConfig checks the web config at start, so a bad file stops the
// daemon with its error instead of a listener that fails on every
// request.
func loadWebConfig(path string) (webListen, error) {
	if path == "" {
		return webListen{}, nil
	}
	if err := web.Validate(path); err != nil {
		return webListen{}, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return webListen{}, fmt.Errorf("--web.config.file: %w", err)
	}
	var c web.Config
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return webListen{}, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	tls := c.TLSConfig.TLSCertPath != "" || c.TLSConfig.TLSCert != ""
	clientCerts := tls && strings.HasPrefix(c.TLSConfig.ClientAuth, "RequireAndVerify")
	return webListen{path: path, tls: tls, auth: len(c.Users) > 0 || clientCerts}, nil
}

// warnBeyondLoopback warns, when the daemon listens beyond loopback, of
// plain HTTP (status, plans and the token cross the network in the
// clear) and of reads open to anyone who reaches the address.
func (w webListen) warnBeyondLoopback(log *zap.Logger, addr net.Addr) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return
	}
	if !w.tls {
		log.Warn("listening beyond loopback without TLS: set tls_server_config in --web.config.file",
			zap.String("listen", addr.String()))
	}
	if !w.auth {
		log.Warn("the console and API listen beyond loopback: anyone who can reach them reads the cluster's status (changes still need the token); set basic_auth_users or client certificates in --web.config.file",
			zap.String("listen", addr.String()))
	}
}

// serve serves srv on ln as the web config says, until srv is shut down.
func (w webListen) serve(srv *http.Server, ln net.Listener, log *zap.Logger) error {
	path := w.path
	err := web.Serve(ln, srv, &web.FlagConfig{WebConfigFile: &path}, slog.New(zapHandler{log}))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// zapHandler hands the web library's slog records to the daemon's zap
// logger, so they come out in the daemon's format.
type zapHandler struct{ log *zap.Logger }

func (h zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.Core().Enabled(zapLevel(l))
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	if ce := h.log.Check(zapLevel(r.Level), r.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h zapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(as))
	for _, a := range as {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
	}
	return zapHandler{h.log.With(fields...)}
}

func (h zapHandler) WithGroup(name string) slog.Handler { return zapHandler{h.log.Named(name)} }

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}
