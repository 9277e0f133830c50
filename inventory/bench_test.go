package inventory

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

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

// BenchmarkProbeRound100 is one round of one command on each of 100
// nodes at once, direct or all behind one bastion, on a fresh pool
// (cold: every handshake, the bastion's included) or on one kept up
// (warm). It reports the connections the bastion accepted per round:
// one, however many nodes are behind it.
func BenchmarkProbeRound100(b *testing.B) {
	b.Setenv("SSH_AUTH_SOCK", "")
	const n = 100
	bastion := sshtest.Setup(b, sshtest.Options{})
	auth := []ssh.PublicKey{bastion.Key.Signer.PublicKey()}
	var targets []Target
	var servers []*sshtest.Server
	for i := range n {
		s := sshtest.Start(b, sshtest.Options{AuthorizedKeys: auth})
		servers = append(servers, s)
		targets = append(targets, targetOf(s, fmt.Sprintf("n%d", i)))
	}
	sshtest.WriteKnownHosts(b, bastion.KnownHosts, append([]*sshtest.Server{bastion.Server}, servers...)...)
	round := func(p *Pool) {
		var wg sync.WaitGroup
		for _, tg := range targets {
			wg.Go(func() {
				if _, err := p.Run(context.Background(), tg, "true", nil); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	for _, via := range []string{"direct", "bastion"} {
		cfg := baseConfig(bastion)
		cfg.Concurrency = n
		if via == "bastion" {
			cfg.Bastion = &Bastion{Address: bastion.Server.Host(), Port: bastion.Server.Port(), User: "jump"}
		}
		b.Run(via+"/cold", func(b *testing.B) {
			before := bastion.Server.Stats().Accepted
			for b.Loop() {
				p, err := NewPool(cfg, zap.NewNop())
				if err != nil {
					b.Fatal(err)
				}
				round(p)
				p.Close()
			}
			b.ReportMetric(float64(bastion.Server.Stats().Accepted-before)/float64(b.N), "bastion-conns/round")
		})
		b.Run(via+"/warm", func(b *testing.B) {
			p, err := NewPool(cfg, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			round(p)
			before := bastion.Server.Stats().Accepted
			for b.Loop() {
				round(p)
			}
			b.ReportMetric(float64(bastion.Server.Stats().Accepted-before)/float64(b.N), "bastion-conns/round")
		})
	}
}
