package ha

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drover-project/drover/internal/etcdtest"
)

func TestJudge(t *testing.T) {
	acted := &Generation{Hash: "h2", Seq: 2}
	for _, c := range []struct {
		name        string
		own         string
		acted       *Generation
		actedBefore bool
		want        Standing
	}{
		{"nothing acted on yet: any file may act", "h1", nil, false, Current},
		{"the generation acted on now", "h2", acted, true, Current},
		{"acted on before and superseded: stale", "h1", acted, true, Stale},
		{"never acted on: the next edit", "h3", acted, false, New},
	} {
		if got := Judge(c.own, c.acted, c.actedBefore); got != c.want {
			t.Errorf("%s: Judge(%s) = %s, want %s", c.name, c.own, got, c.want)
		}
	}
}

// The leader publishes h1 then h2; h1 is stale from then on, h3 is new,
// a revert to h1 by the leader makes h2 the stale one; a deposed
// leader's publish lands nowhere.
func TestGenerationsPublishAndStanding(t *testing.T) {
	c := etcdtest.Start(t, etcdAddr)
	cli := client(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := join(t, cli, "a", 2*time.Second)
	ta, err := a.Campaign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerations(cli, "/drover/t/")
	standing := func(h string) Standing {
		t.Helper()
		s, _, err := g.Standing(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := standing("h1"); s != Current {
		t.Fatalf("before anything was acted on h1 is %s", s)
	}
	g1, err := g.Publish(ctx, ta, "h1")
	if err != nil || g1.Seq != 1 || g1.By != "a" || g1.Revision == 0 {
		t.Fatalf("publish h1: %+v %v", g1, err)
	}
	if again, err := g.Publish(ctx, ta, "h1"); err != nil || again.Seq != 1 || again.Revision != g1.Revision {
		t.Fatalf("publishing h1 again changed it: %+v %v", again, err)
	}
	g2, err := g.Publish(ctx, ta, "h2")
	if err != nil || g2.Seq != 2 || g2.Revision <= g1.Revision {
		t.Fatalf("publish h2: %+v %v", g2, err)
	}
	for h, want := range map[string]Standing{"h1": Stale, "h2": Current, "h3": New} {
		if s := standing(h); s != want {
			t.Errorf("after h1, h2: %s is %s, want %s", h, s, want)
		}
	}
	if acted, err := g.Acted(ctx, true); err != nil || acted.Hash != "h2" || acted.Seq != 2 {
		t.Fatalf("acted: %+v %v", acted, err)
	}
	if _, err := g.Publish(ctx, ta, "h1"); err != nil {
		t.Fatal(err)
	}
	if s := standing("h2"); s != Stale {
		t.Errorf("after the revert to h1, h2 is %s, want stale", s)
	}
	a.Close()
	b := join(t, cli, "b", 2*time.Second)
	defer b.Close()
	if _, err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Publish(ctx, ta, "h9"); !errors.Is(err, ErrPublishRace) {
		t.Fatalf("a deposed leader published: %v", err)
	}
	if acted, _ := g.Acted(ctx, false); acted.Hash != "h1" || acted.Seq != 3 {
		t.Fatalf("acted after the deposed leader's try: %+v", acted)
	}
}
