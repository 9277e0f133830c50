package manifests_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
)

// The compile right after a load renders no template again: validation
// rendered each for every node, and Loaded.Renderer hands its outputs on.
func TestCompileAfterLoadRendersNothingAgain(t *testing.T) {
	paths, _ := filepath.Glob("../examples/*/cluster.yaml")
	if len(paths) == 0 {
		t.Fatal("no examples")
	}
	for _, path := range paths {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			l, err := manifests.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			runs, stop := manifests.CountRuns()
			defer stop()
			if _, err := plan.Compile(l); err != nil {
				t.Fatal(err)
			}
			if n := runs(); n != 0 {
				t.Errorf("the compile executed %d templates validation had rendered", n)
			}
			// A later compile renders afresh: the load's renderer was
			// handed out once. The count shows the hook sees renders.
			before := runs()
			if _, err := plan.Compile(l); err != nil {
				t.Fatal(err)
			}
			if runs() == before {
				t.Error("a second compile executed no template: the count sees nothing")
			}
			if r1, r2 := l.Renderer(context.Background()), l.Renderer(context.Background()); r1 == r2 {
				t.Error("Renderer returned one renderer twice")
			}
		})
	}
}
