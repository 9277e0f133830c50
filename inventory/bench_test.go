package inventory

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/drover-project/drover/internal/sshtest"
)

// BenchmarkRunWarm is one Run on a connection that is already up: the
// cost of a session (open, exec, exit status, close) plus the remote sh.
func BenchmarkRunWarm(b *testing.B) {
	f := sshtest.Setup(b, sshtest.Options{})
	b.Setenv("SSH_AUTH_SOCK", "")
	p, err := NewPool(baseConfig(f), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	tg := targetOf(f.Server, "n1")
	ctx := context.Background()
	if _, err := p.Run(ctx, tg, "true", nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(ctx, tg, "true", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunCold is one Run on a fresh pool: key loading, TCP dial,
// SSH handshake with host key check and public key auth, then the session.
func BenchmarkRunCold(b *testing.B) {
	f := sshtest.Setup(b, sshtest.Options{})
	b.Setenv("SSH_AUTH_SOCK", "")
	tg := targetOf(f.Server, "n1")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewPool(baseConfig(f), zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Run(ctx, tg, "true", nil); err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
