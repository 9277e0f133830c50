package ha

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/drover-project/drover/internal/etcdtest"
)

// etcdAddr is this package's etcd member (its own loopback address).
const etcdAddr = "127.5.3.1"

func client(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func join(t *testing.T, cli *clientv3.Client, name string, ttl time.Duration) *Member {
	t.Helper()
	m, err := Join(context.Background(), Config{Client: cli, Prefix: "/drover/t/", Name: name, URL: "http://" + name, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// One leads, the other waits; the leader's death (its client gone, no
// revoke: a SIGKILL) passes the lead within the lease TTL, and the dead
// one's term has ended by then.
func TestElectionOneLeaderAndTakeover(t *testing.T) {
	c := etcdtest.Start(t, etcdAddr)
	const ttl = 2 * time.Second
	cliA := client(t, c)
	a := join(t, cliA, "a", ttl)
	b := join(t, client(t, c), "b", ttl)
	defer b.Close()
	ta, err := a.Campaign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan *Term, 1)
	go func() {
		tb, err := b.Campaign(context.Background())
		if err != nil {
			t.Error(err)
		}
		won <- tb
	}()
	ctx := context.Background()
	for n := 0; n != 2; {
		if n, err = b.Members(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-won:
		t.Fatal("two leaders")
	case <-time.After(300 * time.Millisecond):
	}
	if info, ok, err := b.Leader(ctx); err != nil || !ok || info.Name != "a" || info.URL != "http://a" {
		t.Fatalf("leader seen by b: %+v %v %v", info, ok, err)
	}
	if err := ta.MayAct(); err != nil {
		t.Fatalf("leader may not act: %v", err)
	}
	killed := time.Now()
	cliA.Close() // a dies: its lease is not revoked, it runs out
	var tb *Term
	select {
	case tb = <-won:
	case <-time.After(ttl + 2*time.Second):
		t.Fatalf("no takeover within TTL + 2s")
	}
	t.Logf("b leads %s after a died", time.Since(killed).Round(time.Millisecond))
	if err := ta.MayAct(); !errors.Is(err, ErrFenced) {
		t.Fatalf("the dead leader's term: %v, want ErrFenced", err)
	}
	if err := tb.MayAct(); err != nil {
		t.Fatalf("new leader may not act: %v", err)
	}
	if info, _, _ := b.Leader(ctx); info.Name != "b" {
		t.Fatalf("leader now %+v", info)
	}
}

// etcd gone (every member killed: no quorum, no renewal): the leader's
// term ends by itself before its lease's TTL is out, so it is fenced
// before etcd could hand the lead to anyone else.
func TestTermEndsBeforeLeaseWithoutEtcd(t *testing.T) {
	c := etcdtest.Start(t, etcdAddr)
	const ttl = 3 * time.Second
	a := join(t, client(t, c), "a", ttl)
	ta, err := a.Campaign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // a renewal or two
	a.mu.Lock()
	renewed := a.renewed
	a.mu.Unlock()
	c.Stop()
	if err := ta.MayAct(); err != nil {
		t.Fatalf("fenced at once: %v", err)
	}
	select {
	case <-ta.Ended():
	case <-time.After(ttl):
		t.Fatal("term did not end within the TTL of etcd going away")
	}
	if since := time.Since(renewed); since >= ttl {
		t.Fatalf("term ended %s after the last renewal: not before the lease could expire (%s)", since, ttl)
	}
	if err := ta.MayAct(); !errors.Is(err, ErrFenced) {
		t.Fatalf("MayAct after: %v", err)
	}
}

// After a partition heals, the grant of a new lease can be answered late
// (sent during the partition) and its keep-alive stream open late (it sat
// on a connection that died in the partition): CI's
// TestLeaderCutOffFromEtcdFences once saw a standby win the lead that way
// and be fenced 2.4s later, before any renewal. A member must not come
// out of Join on a lease it cannot trust: the term it wins may act.
func TestLateGrantAndRenewalStillLead(t *testing.T) {
	c := etcdtest.Start(t, etcdAddr)
	const ttl = 2 * time.Second
	lateGrant := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/LeaseGrant") {
			time.Sleep(ttl)
		}
		return invoke(ctx, method, req, reply, cc, opts...)
	})
	lateRenewal := grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if strings.HasSuffix(method, "/LeaseKeepAlive") {
			time.Sleep(ttl / 2) // less than the TTL: the lease lives
		}
		return streamer(ctx, desc, cc, method, opts...)
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, DialOptions: []grpc.DialOption{lateGrant, lateRenewal}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	m := join(t, cli, "late", ttl)
	defer m.Close()
	term, err := m.Campaign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := term.MayAct(); err != nil {
		t.Fatalf("a term won on a live lease may not act: %v", err)
	}
}

// The guard of an ended term fails in etcd once another daemon leads.
func TestGuardFailsForDeposedLeader(t *testing.T) {
	c := etcdtest.Start(t, etcdAddr)
	cli := client(t, c)
	a := join(t, client(t, c), "a", 2*time.Second)
	ta, err := a.Campaign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, err := cli.Txn(ctx).If(ta.Guard()).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("guard while leading: %v %v", resp, err)
	}
	a.Close()
	b := join(t, cli, "b", 2*time.Second)
	defer b.Close()
	if _, err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err = cli.Txn(ctx).If(ta.Guard()).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("guard of the deposed leader held: %v %v", resp, err)
	}
}
